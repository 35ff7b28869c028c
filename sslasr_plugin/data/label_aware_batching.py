"""Label-Aware Batching (LAB, Xiao et al. 2021): batches in which labels come in pairs.

The CSL loss needs, for every sampled frame, another frame with the same pseudo-label in the
batch.  LAB builds each batch by repeatedly taking the rarest label that the batch does not yet
hold twice and adding utterances that contain it (two for a label the batch lacks, one for a
label it holds once), until the token budget is spent.  Each utterance is used at most once per
epoch; the result depends only on (seed, epoch).

This module is a sampler (it decides what goes into a batch) and knows nothing of tensors.
"""
import bisect
import heapq
import random
from typing import Dict, List, Optional, Sequence

import numpy as np


class _LabelPool:
    """Which unused utterances hold each label, sorted by size, for random draws among those
    that fit a batch's remaining budget.

    Fast for large corpora (1M utterances in seconds): a draw is a bisection for the budget and a
    few random probes; used utterances are dropped from a label's list when probes keep hitting
    them.  An utterance is marked used only once its pair is complete, so "used" only grows."""

    PROBES = 16

    def __init__(self, utt_labels: Sequence[np.ndarray], sizes: np.ndarray, rng: np.random.Generator,
                 unusable: np.ndarray):
        self.sizes = sizes.tolist()
        unique = [np.unique(lab) for lab in utt_labels]
        self.labels = [lab.tolist() for lab in unique]
        self.used = unusable.tolist()  # a list: indexing it from Python is far cheaper than numpy's
        self.unused = len(self.used) - sum(self.used)
        # (label, utterance) pairs of usable utterances, sorted by label, then size: one list each.
        label_of = np.concatenate(unique + [np.zeros(0, np.int64)]).astype(np.int64)
        utt_of = np.repeat(np.arange(len(unique)), [len(lab) for lab in unique])
        keep = ~unusable[utt_of]
        label_of, utt_of = label_of[keep], utt_of[keep]
        order = np.lexsort((sizes[utt_of], label_of))
        label_of, utt_of = label_of[order], utt_of[order]
        labels, starts = np.unique(label_of, return_index=True)
        bounds = list(zip(labels.tolist(), starts.tolist(), starts[1:].tolist() + [len(label_of)]))
        self.index = {label: utt_of[a:b].tolist() for label, a, b in bounds}
        self.keys = {label: sizes[utt_of[a:b]].tolist() for label, a, b in bounds}
        self.left = {label: b - a for label, a, b in bounds}  # unused utterances holding it
        self.random = random.Random(int(rng.integers(2**63)))

    def set_used(self, utt: int) -> None:
        self.used[utt] = True
        self.unused -= 1
        for label in self.labels[utt]:
            self.left[label] -= 1

    def candidate(self, label: int, cap: int, exclude: List[int]) -> Optional[int]:
        """A random unused utterance holding ``label``, not in ``exclude``, of size <= ``cap``."""
        utts, used = self.index[label], self.used
        fit = bisect.bisect_right(self.keys[label], cap)
        for _ in range(self.PROBES if fit else 0):
            utt = utts[self.random.randrange(fit)]
            if not used[utt] and utt not in exclude:
                return utt
        if not fit:
            return None
        # The probes kept hitting used utterances: drop those among the fitting ones, draw again.
        kept = [u for u in utts[:fit] if not used[u]]
        utts[:fit] = kept
        self.keys[label][:fit] = [self.sizes[u] for u in kept]
        free = [u for u in kept if u not in exclude]
        return free[self.random.randrange(len(free))] if free else None


def label_aware_batches(
    utt_labels: Sequence[np.ndarray],
    sizes: np.ndarray,
    max_tokens: int,
    seed: int,
    epoch: int,
    max_sentences: Optional[int] = None,
) -> List[List[int]]:
    """Batches (lists of utterance indices) for one epoch.

    utt_labels[i]: the pseudo-labels of utterance i (any int array; repeats are fine).
    sizes[i]: its length in the unit of max_tokens (samples for raw audio, as in fairseq);
    a batch's cost is max(size) * len(batch), fairseq's padded-batch rule.
    Utterances longer than max_tokens are never used.  A label is paired whenever the budget
    allows; a label held by the batch once when no utterance holding it fits any more stays
    single (``pair_coverage`` measures how often).
    """
    rng = np.random.default_rng([seed, epoch])
    sizes = np.asarray(sizes)
    pool = _LabelPool(utt_labels, sizes, rng, sizes > max_tokens)
    batches: List[List[int]] = []
    tie_break = pool.random.random
    while pool.unused:
        batch: List[int] = []
        count: Dict[int, int] = {}
        longest = 0  # size of the batch's longest utterance

        def cap() -> int:
            """The largest utterance one more member of the batch may be (-1: none fits)."""
            n = len(batch) + 1
            if (max_sentences is not None and n > max_sentences) or longest * n > max_tokens:
                return -1
            return max_tokens // n

        # Labels to serve, rarest first: (priority, random tie-break, label); labels the batch
        # holds once are pushed with priority -1 so that they are paired first.
        heap = [(pool.left[lab], tie_break(), lab) for lab in pool.index if pool.left[lab] >= 2]
        heapq.heapify(heap)
        while heap:
            _, _, label = heapq.heappop(heap)
            need = 2 - count.get(label, 0)
            picked = []
            while len(picked) < need:
                utt = pool.candidate(label, cap(), picked)
                if utt is None:
                    break
                picked.append(utt)
                batch.append(utt)
                longest = max(longest, pool.sizes[utt])
            if len(picked) < need:  # the pair cannot be completed: take the utterances out again
                del batch[len(batch) - len(picked):]
                longest = max((pool.sizes[u] for u in batch), default=0)
                continue
            for utt in picked:
                pool.set_used(utt)
                for lab in pool.labels[utt]:
                    count[lab] = count.get(lab, 0) + 1
                    if count[lab] == 1:
                        heapq.heappush(heap, (-1, tie_break(), lab))
        if not batch:
            # What is left holds only labels no other unused utterance has: one per batch.
            batches.extend([u] for u, used in enumerate(pool.used) if not used)
            break
        batches.append(batch)
    return [batches[i] for i in rng.permutation(len(batches))]


def pair_coverage(batches: List[List[int]], utt_labels: Sequence[np.ndarray]) -> float:
    """Fraction of (batch, label) occurrences whose label is held by >= 2 of the batch's utterances."""
    paired = total = 0
    for batch in batches:
        counts: Dict[int, int] = {}
        for utt in batch:
            for label in np.unique(utt_labels[utt]).tolist():
                counts[label] = counts.get(label, 0) + 1
        total += len(counts)
        paired += sum(1 for c in counts.values() if c >= 2)
    return paired / max(total, 1)
