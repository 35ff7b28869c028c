"""Which loss each update trains, and the batches that feed it (joint CPC + CTC).

The schedule is a function of the global update number: ``pretrain_updates`` updates of the
``warmup`` kind (unsupervised pre-training for joint CPC + CTC, supervised warm-up for
slimIPL), then cycles of ``unsup_updates`` unsupervised and ``sup_updates`` supervised ones.
An epoch is a run of consecutive updates; its batch list puts, for each update, the
``num_shards * update_freq`` batches fairseq will deal out to the ranks and accumulate, all
of that update's kind.  The list is a sampler in the lhotse sense (the dataset only turns
indices into tensors), is fully determined by (seed, epoch), and fairseq's iterator must not
shuffle it (``disable_shuffling``), so resuming mid-epoch lands on the same update.
"""
import math
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import numpy as np

from ..batch_modes import STREAMS, SUP, UNSUP


@dataclass(frozen=True)
class Schedule:
    pretrain_updates: int = 0
    unsup_updates: int = 1
    sup_updates: int = 1
    warmup: str = UNSUP

    def __post_init__(self):
        if self.warmup not in (UNSUP, SUP):
            raise ValueError(f"warmup must be {UNSUP!r} or {SUP!r} (got {self.warmup!r})")
        if min(self.pretrain_updates, self.unsup_updates, self.sup_updates) < 0:
            raise ValueError(f"update counts must be >= 0: {self}")
        if self.unsup_updates + self.sup_updates == 0:
            raise ValueError("unsup_updates and sup_updates are both 0: no update would follow pretrain_updates")

    def mode(self, update_num: int) -> str:
        if update_num < self.pretrain_updates:
            return self.warmup
        k = (update_num - self.pretrain_updates) % (self.unsup_updates + self.sup_updates)
        return UNSUP if k < self.unsup_updates else SUP

    def count(self, mode: str, update_num: int) -> int:
        """Updates of ``mode`` before ``update_num``."""
        warm = min(update_num, self.pretrain_updates) if mode == self.warmup else 0
        cycles, k = divmod(max(update_num - self.pretrain_updates, 0), self.unsup_updates + self.sup_updates)
        if mode == UNSUP:
            return warm + cycles * self.unsup_updates + min(k, self.unsup_updates)
        return warm + cycles * self.sup_updates + max(k - self.unsup_updates, 0)

    def updates_per_epoch(self, unsup_batches: int, sup_batches: int, batches_per_update: int) -> int:
        """Updates in one epoch: one pass over the unlabeled batches at the alternating ratio
        (or over the labeled ones when there are no unsupervised updates)."""
        cycle = self.unsup_updates + self.sup_updates
        if self.unsup_updates > 0:
            return cycle * math.ceil(unsup_batches / (batches_per_update * self.unsup_updates))
        return cycle * math.ceil(sup_batches / (batches_per_update * self.sup_updates))


def reshuffled(batches: Sequence[List[int]], order: Callable[[int], np.ndarray]) -> Iterator[List[int]]:
    """The batches pass after pass, endless; pass ``n`` (from 0) in the order ``order(n)`` (a
    permutation of their positions)."""
    if not batches:
        raise ValueError("no batches to draw from")
    n = 0
    while True:
        for i in order(n):
            yield batches[i]
        n += 1


def epoch_batches(schedule: Schedule, batches: Dict[str, Sequence[List[int]]], epoch: int, seed: int,
                  batches_per_update: int,
                  unsup: Optional[Callable[[int], List[List[int]]]] = None) -> List[List[int]]:
    """The batch list of ``epoch`` (1-based): ``updates_per_epoch`` updates, each
    ``batches_per_update`` batches of the kind ``schedule.mode`` gives its global update number,
    drawn from a reshuffled cycle over that kind's batches; ``unsup(update_num)``, when given,
    gives an unsupervised update's batches instead (slimIPL's cache: ``data.pl_cache_batches``)."""
    n = schedule.updates_per_epoch(len(batches[UNSUP]), len(batches[SUP]), batches_per_update)
    first = (epoch - 1) * n
    streams = {
        mode: reshuffled(batches[mode], lambda _, b=batches[mode], rng=np.random.RandomState([seed, epoch, i]):
                         rng.permutation(len(b)))
        for i, mode in enumerate(STREAMS) if len(batches[mode])
    }
    out = []
    for update_num in range(first, first + n):
        mode = schedule.mode(update_num)
        if mode not in streams:
            raise ValueError(f"update {update_num} is {mode} but there are no {mode}ervised batches")
        if mode == UNSUP and unsup is not None:
            out.extend(unsup(update_num))
        else:
            out.extend(next(streams[mode]) for _ in range(batches_per_update))
    return out
