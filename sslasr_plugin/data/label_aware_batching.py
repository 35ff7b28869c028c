"""Label-Aware Batching (LAB, Xiao et al. 2021): batches in which labels come in pairs.

The CSL loss needs, for every sampled frame, another frame with the same pseudo-label in the
batch.  LAB builds each batch by repeatedly taking the rarest label that the batch does not yet
hold twice and adding utterances that contain it (two for a label the batch lacks, one for a
label it holds once), until the token budget is spent.  Each utterance is used at most once per
epoch; the result depends only on (seed, epoch).

This module is a sampler (it decides what goes into a batch) and knows nothing of tensors.
"""
import heapq
from typing import Dict, List, Optional, Sequence

import numpy as np


class _LabelPool:
    """Which unused utterances hold each label, in a per-epoch random order."""

    def __init__(self, utt_labels: Sequence[np.ndarray], rng: np.random.Generator, unusable: np.ndarray):
        self.labels = [np.unique(lab).tolist() for lab in utt_labels]
        self.index: Dict[int, List[int]] = {}
        for utt, labels in enumerate(self.labels):
            for label in labels:
                self.index.setdefault(label, []).append(utt)
        for utts in self.index.values():
            rng.shuffle(utts)
        self.cursor = dict.fromkeys(self.index, 0)
        self.left = dict.fromkeys(self.index, 0)  # unused utterances holding the label
        self.used = unusable.copy()
        for utt in np.flatnonzero(~self.used).tolist():
            for label in self.labels[utt]:
                self.left[label] += 1

    def set_used(self, utt: int, used: bool) -> None:
        self.used[utt] = used
        for label in self.labels[utt]:
            self.left[label] += -1 if used else 1

    def candidate(self, label: int, fits) -> Optional[int]:
        """The first unused utterance holding ``label`` that ``fits`` the batch."""
        utts, i = self.index[label], self.cursor[label]
        while i < len(utts) and self.used[utts[i]]:
            i += 1
        self.cursor[label] = i  # used utterances stay used for the rest of the epoch
        for utt in utts[i:]:
            if not self.used[utt] and fits(utt):
                return utt
        return None


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
    pool = _LabelPool(utt_labels, rng, sizes > max_tokens)
    batches: List[List[int]] = []
    while not pool.used.all():
        batch: List[int] = []
        count: Dict[int, int] = {}
        longest = [0]  # size of the batch's longest utterance, kept up to date as it changes

        def fits(utt: int) -> bool:
            n = len(batch) + 1
            if max_sentences is not None and n > max_sentences:
                return False
            return max(longest[0], sizes[utt]) * n <= max_tokens

        # Labels to serve, rarest first: (priority, random tie-break, label); labels the batch
        # holds once are pushed with priority -1 so that they are paired first.
        heap = [(pool.left[lab], rng.random(), lab) for lab in pool.index if pool.left[lab] >= 2]
        heapq.heapify(heap)
        while heap:
            _, _, label = heapq.heappop(heap)
            need = 2 - count.get(label, 0)
            picked = []
            while len(picked) < need:
                utt = pool.candidate(label, fits)
                if utt is None:
                    break
                pool.set_used(utt, True)
                picked.append(utt)
                batch.append(utt)
                longest[0] = max(longest[0], sizes[utt])
            if len(picked) < need:  # the pair cannot be completed: give the utterances back
                for utt in picked:
                    pool.set_used(utt, False)
                    batch.remove(utt)
                longest[0] = max((sizes[u] for u in batch), default=0)
                continue
            for utt in picked:
                for lab in pool.labels[utt]:
                    count[lab] = count.get(lab, 0) + 1
                    if count[lab] == 1:
                        heapq.heappush(heap, (-1, rng.random(), lab))
        if not batch:
            # What is left holds only labels no other unused utterance has: one per batch.
            rest = np.flatnonzero(~pool.used).tolist()
            pool.used[rest] = True
            batches.extend([u] for u in rest)
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
