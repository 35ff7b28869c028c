"""The dynamic pseudo-label cache of slimIPL (Likhomanenko et al. 2021).

``size`` pseudo-labeled batches: filled with newly labeled batches, then visited in a random
order per pass, each visit replacing the entry with probability ``replace_prob``.  Every decision
is a function of (seed, reads so far) (``CachePlan``), so a restored cache decides as the saved
one did, on every rank, and the sampler (``data.pl_cache_batches``) can choose the batches the
cache will need before they are loaded; entries are opaque and hold only what loads with
``weights_only=True``.
"""
from typing import Any, Dict, List, Tuple

import numpy as np


class CachePlan:
    """The cache's decisions as a function of the read number ``t`` (reads of a full cache:
    ``t`` counts from the read after the last fill)."""

    def __init__(self, size: int, replace_prob: float, seed: int):
        if size < 1:
            raise ValueError(f"cache size must be >= 1 (got {size})")
        if not 0.0 <= replace_prob <= 1.0:
            raise ValueError(f"cache replace_prob must be in [0, 1] (got {replace_prob})")
        self.size, self.replace_prob, self.seed = size, replace_prob, seed
        self._order = (-1, None)  # (pass, permutation) of the last pass asked for

    def __call__(self, t: int) -> Tuple[int, bool]:
        """(slot read at read ``t``, whether a newly labeled batch replaces it)."""
        n, pos = divmod(t, self.size)
        if self._order[0] != n:
            self._order = (n, np.random.default_rng([self.seed, n, 0]).permutation(self.size))
        replace = bool(np.random.default_rng([self.seed, t, 1]).random() < self.replace_prob)
        return int(self._order[1][pos]), replace


class PseudoLabelCache:
    def __init__(self, size: int, replace_prob: float, seed: int):
        self.decide = CachePlan(size, replace_prob, seed)
        self.size, self.replace_prob, self.seed = size, replace_prob, seed
        self.entries: List[Any] = []
        self.reads = 0  # entries trained on since the cache became full

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def full(self) -> bool:
        return len(self.entries) >= self.size

    def plan(self) -> Tuple[int, bool]:
        """The next unlabeled read: (slot to train on, whether a newly labeled batch goes into it).
        Filling: (the next empty slot, True) -- the new batch is stored (and trained on only with
        the task's ``train_while_filling``)."""
        if not self.full:
            return len(self.entries), True
        slot, replace = self.decide(self.reads)
        self.reads += 1
        return slot, replace

    def put(self, slot: int, entry: Any) -> None:
        if slot == len(self.entries) and not self.full:
            self.entries.append(entry)
        elif 0 <= slot < len(self.entries):
            self.entries[slot] = entry
        else:
            raise IndexError(f"cache slot {slot} out of range (cache holds {len(self.entries)} of {self.size})")

    def __getitem__(self, slot: int) -> Any:
        return self.entries[slot]

    def state_dict(self) -> Dict[str, Any]:
        return {"reads": self.reads, "entries": list(self.entries)}  # size, p and seed come from the config

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        entries = list(state["entries"])
        if len(entries) > self.size:  # a smaller cache was configured on resume: keep the first entries
            entries = entries[: self.size]
        self.entries, self.reads = entries, int(state["reads"]) if len(entries) == self.size else 0
