"""slimIPL's cache on the data side: the sampler that chooses, before they are loaded, the
unlabeled batches each read of the cache needs, and the dataset that loads them and puts the
cached pseudo-labels on.

The cache decides as a function of (seed, reads) (``data.pl_cache.CachePlan``), so the batch
list can say ahead which batch a read trains on (the one its slot holds) and which new batch it
labels (every read while the cache fills, a fraction ``replace_prob`` after).  The loader then
prepares exactly these batches, in its workers; nothing is loaded and thrown away, nothing is
read in the trainer's process.  The labels are attached in the trainer's process
(``PseudoLabelingDataset.with_labels``): a slot relabeled at one read may be trained on at the
next, whose batch the loader has prepared before the labels existed.
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from fairseq.data import data_utils
from torch.nn.utils.rnn import pad_sequence

from ..batch_modes import PL, UNSUP
from .alternating_batches import reshuffled
from .pl_cache import CachePlan
from .two_stream_dataset import TwoStreamDataset

Batches = List[List[int]]  # one batch of dataset indices per rank


class CacheBatches:
    """The batches of the cache's reads.  A read is one unlabeled micro-batch on every rank;
    reads are numbered from the first unlabeled update, filling included.  New batches come from
    an endless stream over ``batches`` (dataset indices), reshuffled on every pass, a function of
    (seed, pass); what each slot holds is simulated from read 0 and kept, so successive epochs
    continue where the last one stopped and a resumed run recomputes the same history.  This
    holds while ``batches`` stay the same from epoch to epoch, which is why slimIPL does not
    speed-perturb its unlabeled audio and refuses an update_freq that changes with the epoch."""

    def __init__(self, plan: CachePlan, batches: Sequence[List[int]], seed: int, shards: int):
        if not len(batches):
            raise ValueError("slimIPL's cache has no unlabeled batches to draw from")
        self.plan, self.batches, self.seed, self.shards = plan, [list(b) for b in batches], seed, shards
        self._rewind()

    def _rewind(self) -> None:
        self._next, self._slots = 0, {}
        self._new = reshuffled(self.batches, lambda n: np.random.default_rng([self.seed, n, 2]).permutation(
            len(self.batches)))

    def _draw(self) -> Batches:
        """The next new batch of every rank."""
        return [next(self._new) for _ in range(self.shards)]

    def _step(self) -> Tuple[Optional[Batches], Optional[Batches]]:
        t, size = self._next, self.plan.size
        self._next += 1
        if t < size:  # filling: slot t gets a new batch
            self._slots[t] = self._draw()
            return None, self._slots[t]
        slot, replace = self.plan(t - size)
        train = self._slots[slot]
        if not replace:
            return train, None
        self._slots[slot] = self._draw()
        return train, self._slots[slot]

    def read(self, t: int) -> Tuple[Optional[Batches], Optional[Batches]]:
        """(the batches read ``t`` trains on, None while filling; the new batches it labels, or None)."""
        if t < self._next:
            self._rewind()
        while self._next < t:
            self._step()
        return self._step()

    def reads(self, first: int, n: int, fresh_offset: int) -> Batches:
        """Reads ``first`` .. ``first + n - 1`` as fairseq deals batches (read by read, rank by rank):
        each rank's batch holds the indices it trains on and, shifted by ``fresh_offset``
        (``PseudoLabelingDataset``), those it labels."""
        out = []
        for t in range(first, first + n):
            train, fresh = self.read(t)
            for rank in range(self.shards):
                out.append((train[rank] if train else []) + ([i + fresh_offset for i in fresh[rank]] if fresh else []))
        return out


class PseudoLabelingDataset(TwoStreamDataset):
    """``TwoStreamDataset`` whose indices from ``len(self)`` on are the unlabeled utterances again,
    to be labeled: an unlabeled batch collates the utterances it trains on as usual and those
    to label under ``"fresh"`` (a batch of the cache's filling has only these)."""

    def fresh_offset(self) -> int:
        return len(self)

    def __getitem__(self, index):
        fresh = index >= len(self)
        item = super().__getitem__(index - len(self) if fresh else index)
        item["_fresh"] = fresh
        return item

    def collater(self, samples):
        roles = [s.pop("_fresh") for s in samples]
        fresh = [s for s, is_fresh in zip(samples, roles) if is_fresh]
        train = [s for s, is_fresh in zip(samples, roles) if not is_fresh]
        batch = super().collater(train) if train else {"mode": UNSUP} if fresh else {}
        if fresh:
            batch["fresh"] = super().collater(fresh)
        return batch

    @staticmethod
    def with_labels(batch: Dict[str, Any], part: Dict[str, Any], pad: int) -> Dict[str, Any]:
        """``batch`` (without its ``"fresh"`` part) as a pseudo-labeled batch: ``part``'s tokens as
        targets (padded with ``pad``), and its frame distributions for soft labels."""
        device = batch["net_input"]["source"].device
        tokens = [t.long() for t in part["tokens"]]
        batch = {k: v for k, v in batch.items() if k != "fresh"}
        batch["mode"] = PL
        batch["target"] = data_utils.collate_tokens(tokens, pad_idx=pad, left_pad=False).to(device)
        batch["target_lengths"] = torch.tensor([len(t) for t in tokens], device=device)
        batch["ntokens"] = int(batch["target_lengths"].sum())
        if part["log_probs"]:
            batch["pl_log_probs"] = pad_sequence(part["log_probs"], batch_first=True).to(device)
            batch["pl_frames"] = torch.tensor([len(lp) for lp in part["log_probs"]], device=device)
        return batch
