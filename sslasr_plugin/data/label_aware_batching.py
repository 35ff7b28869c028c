"""Label-Aware Batching (LAB, Xiao et al. 2021): batches in which labels come in pairs.

The CSL loss needs, for every sampled frame, another frame with the same pseudo-label in the
batch; LAB builds batches rarest label first, adding utterances until each label is held twice.
A sampler: it decides what goes into a batch, depends only on (seed, epoch) and knows nothing of
tensors.  The algorithm, its bitmask and length buckets: docs/design.md, "Label-aware batching".
"""
import random
from array import array
from typing import List, Optional, Sequence, Union

import numpy as np

_CHUNK_CELLS = 1 << 26  # presence-matrix cells per chunk when reading the label sets
_CHUNK_FRAMES = 1 << 24  # labels read per chunk


class LabelSets:
    """The distinct labels of every utterance, computed once (the sampler runs every epoch).

    Labels are renumbered rarest first: ``rank_of[i]`` is the rank of ``vocab[i]`` (0: held by
    the fewest utterances).  Per utterance: ``masks[u]``, an int with bit r set for each rank r
    it holds; ``pair_utt``/``pair_rank``: the same as flat arrays, grouped by utterance
    (utterance u: ``bounds[u]:bounds[u + 1]``)."""

    def __init__(self, utt_labels: Sequence[np.ndarray]):
        n = len(utt_labels)
        lengths = np.fromiter((len(lab) for lab in utt_labels), np.int64, n)
        utt_parts, label_parts = [], []
        for a, b in _chunks(lengths, n, _CHUNK_FRAMES):
            flat = np.concatenate([np.asarray(lab, dtype=np.int64).reshape(-1) for lab in utt_labels[a:b]]
                                  + [np.zeros(0, np.int64)])
            local = np.repeat(np.arange(b - a), lengths[a:b])
            if flat.size == 0:
                continue
            lo, hi = int(flat.min()), int(flat.max())
            span = hi - lo + 1
            if span * (b - a) <= _CHUNK_CELLS:  # a presence matrix: linear, no sort
                present = np.zeros((b - a, span), dtype=bool)
                present[local, flat - lo] = True
                rows, cols = np.nonzero(present)
            else:
                if span > (1 << 62) // max(b - a, 1):
                    raise ValueError(f"labels span {lo}..{hi}: too wide for label-aware batching; renumber them")
                keys = np.unique(local * span + (flat - lo))
                rows, cols = keys // span, keys % span
            utt_parts.append(rows + a)
            label_parts.append(cols + lo)
        # pairs (utterance, label), grouped by utterance: the chunks are in order and each
        # chunk's pairs come out sorted by (utterance, label)
        pair_utt = np.concatenate(utt_parts + [np.zeros(0, np.int64)]).astype(np.int64)
        raw = np.concatenate(label_parts + [np.zeros(0, np.int64)]).astype(np.int64)
        if raw.size and raw.min() >= 0 and raw.max() < (1 << 24):  # renumber without a sort
            present = np.bincount(raw) > 0
            self.vocab = np.flatnonzero(present)
            dense = (np.cumsum(present) - 1)[raw]
        else:
            self.vocab, dense = np.unique(raw, return_inverse=True)
        holders = np.bincount(dense, minlength=len(self.vocab))
        order = np.lexsort((self.vocab, holders))  # rarest first, then by label value
        self.rank_of = np.empty(len(self.vocab), np.int64)
        self.rank_of[order] = np.arange(len(self.vocab))
        rank_type = np.uint16 if len(self.vocab) <= 1 << 16 else np.int64
        self.pair_utt, self.pair_rank = pair_utt, self.rank_of[dense].astype(rank_type)
        self.bounds = np.searchsorted(pair_utt, np.arange(n + 1))
        self.masks: List[int] = _masks(self.pair_utt, self.pair_rank, n, len(self.vocab))

    def __len__(self) -> int:
        return len(self.masks)


def _chunks(lengths: np.ndarray, n: int, frames: int):
    """(start, end) utterance ranges of about ``frames`` labels each (at least one utterance)."""
    ends = np.cumsum(lengths)
    a = 0
    while a < n:
        b = int(np.searchsorted(ends, (ends[a - 1] if a else 0) + frames, side="right"))
        b = min(max(b, a + 1), n)
        yield a, b
        a = b


def _masks(pair_utt: np.ndarray, pair_rank: np.ndarray, n: int, vocab: int) -> List[int]:
    """One int per utterance with bit r set for each rank r it holds (packed bytes, not a
    Python loop over labels)."""
    masks: List[int] = []
    width = (vocab + 7) // 8 or 1
    rows_per_chunk = max(1, _CHUNK_CELLS // (8 * width))
    starts = np.searchsorted(pair_utt, np.arange(0, n + rows_per_chunk, rows_per_chunk))
    for c, a in enumerate(range(0, n, rows_per_chunk)):
        b = min(n, a + rows_per_chunk)
        bits = np.zeros((b - a, 8 * width), dtype=bool)
        lo, hi = starts[c], starts[c + 1]
        bits[pair_utt[lo:hi] - a, pair_rank[lo:hi]] = True
        packed = np.packbits(bits, axis=1, bitorder="little").tobytes()
        masks.extend(int.from_bytes(packed[i * width:(i + 1) * width], "little") for i in range(b - a))
    return masks


def _label_sets(utt_labels: Union[LabelSets, Sequence[np.ndarray]]) -> LabelSets:
    return utt_labels if isinstance(utt_labels, LabelSets) else LabelSets(utt_labels)


class _LabelPool:
    """Which unused utterances hold each label, for random draws among those that fit a
    batch's remaining budget.

    Each label's utterances are kept twice.  In a random order (per epoch): when every one of
    them fits the budget (most draws), the draw is the first unused one after a pointer that
    only moves forward.  Sorted by size: when the budget is tighter, a binary search for it and a few
    random probes; used utterances are dropped from the list (vectorized) when probes keep
    hitting them.  An utterance is marked used only once its pair is complete, so "used" only
    grows.  ``active``: a bitmask of the labels that may still start a pair; a label leaves it
    when a draw finds fewer than two unused utterances holding it (no per-label counts to keep
    up to date for every used utterance)."""

    PROBES = 16

    def __init__(self, sets: LabelSets, sizes: np.ndarray, rng: np.random.Generator, unusable: np.ndarray):
        sizes = sizes.astype(np.int64)
        self.sizes = array("q", sizes.tobytes())  # Python-indexable without a list of int objects
        self.used = bytearray(unusable.astype(np.uint8).tobytes())
        self.used_np = np.frombuffer(self.used, dtype=np.bool_)  # the same memory, for vectorized filters
        self.unused = int((~unusable).sum())
        # (label, utterance) pairs of usable utterances grouped by label: within each group
        # by size, and (a second copy) in a random order
        by_size = np.argsort(sizes, kind="stable")
        utt_of, bounds = self._grouped(sets, by_size[~unusable[by_size]])
        spans = list(zip(bounds, bounds[1:]))
        self.by_size = [utt_of[a:b] for a, b in spans]
        self.size_keys = [sizes[u] for u in self.by_size]
        self.largest = [int(k[-1]) if len(k) else 0 for k in self.size_keys]
        shuffled = rng.permutation(len(sizes))
        utt_of, _ = self._grouped(sets, shuffled[~unusable[shuffled]])
        self.shuffled = [array("q", utt_of[a:b].astype(np.int64).tobytes()) for a, b in spans]
        self.next = [0] * len(spans)  # before it, every utterance of the random order is used
        self.active = sum(1 << r for r, (a, b) in enumerate(spans) if b - a >= 2)
        self.random = random.Random(int(rng.integers(2**63)))

    @staticmethod
    def _grouped(sets: LabelSets, utts: np.ndarray):
        """The (label, utterance) pairs of ``utts`` grouped by label, each group in the order of
        ``utts``: their pairs gathered in that order, then a stable (radix) sort by label.
        Returns the utterances and the group bounds."""
        # int32 indices where they fit: these gathers over every pair are memory-bound
        index = np.int32 if len(sets.pair_utt) < 1 << 31 else np.int64
        starts, counts = sets.bounds[utts].astype(index), np.diff(sets.bounds)[utts].astype(index)
        pos = np.repeat(starts - (np.cumsum(counts, dtype=index) - counts), counts)
        pos += np.arange(len(pos), dtype=index)
        key = sets.pair_rank[pos]  # uint16 when the inventory allows: a radix sort
        order = np.argsort(key, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(key, minlength=len(sets.vocab)))]).tolist()
        return np.repeat(utts.astype(index), counts)[order], bounds

    def set_used(self, utt: int) -> None:
        self.used[utt] = 1
        self.unused -= 1

    def candidate(self, label: int, cap: int, exclude: List[int]) -> Optional[int]:
        """A random unused utterance holding ``label``, not in ``exclude``, of size <= ``cap``."""
        used = self.used
        if cap >= self.largest[label]:  # all fit: the next unused one in the random order
            order, i = self.shuffled[label], self.next[label]
            n = len(order)
            while i < n and used[order[i]]:
                i += 1
            self.next[label] = i
            while i < n and (used[order[i]] or order[i] in exclude):
                i += 1
            if i < n:
                return order[i]
            self.active &= ~(1 << label)  # every unused utterance holding it is in exclude: < 2
            return None
        utts, keys, draw = self.by_size[label], self.size_keys[label], self.random.random
        fit = int(keys.searchsorted(cap, side="right"))
        if fit:
            for _ in range(self.PROBES):
                utt = int(utts[int(draw() * fit)])
                if not used[utt] and utt not in exclude:
                    return utt
            # The probes kept hitting used utterances: drop every used one, draw again.
            kept = ~self.used_np[utts]
            utts = self.by_size[label] = utts[kept]
            keys = self.size_keys[label] = keys[kept]
            fit = int(keys.searchsorted(cap, side="right"))
            free = [u for u in utts[:fit].tolist() if u not in exclude]
            if free:
                return free[int(draw() * len(free))]
            if fit == len(utts):  # every unused utterance holding it is in exclude: fewer than two
                self.active &= ~(1 << label)
        elif not len(utts):
            self.active &= ~(1 << label)
        return None


def label_aware_batches(
    utt_labels: Union[LabelSets, Sequence[np.ndarray]],
    sizes: np.ndarray,
    max_tokens: int,
    seed: int,
    epoch: int,
    max_sentences: Optional[int] = None,
    buckets: int = 1,
) -> List[List[int]]:
    """Batches (lists of utterance indices) for one epoch.

    utt_labels[i]: the pseudo-labels of utterance i (any int array; repeats are fine), or a
    ``LabelSets`` of them (build it once when calling every epoch).
    sizes[i]: its length in the unit of max_tokens (samples for raw audio, as in fairseq);
    a batch's cost is max(size) * len(batch), fairseq's padded-batch rule.
    Utterances longer than max_tokens are never used.  A label is paired whenever the budget
    allows; a label held by the batch once when no utterance holding it fits any more stays
    single (``pair_coverage`` measures how often).
    buckets > 1: the usable utterances are split by length into that many buckets of equal
    counts and each batch is built within one bucket, so that it pads little (a random mix of
    lengths pads to its longest member); a label then pairs only with holders of its bucket.
    The batches of all buckets are shuffled together.
    """
    if buckets < 1:
        raise ValueError(f"buckets must be >= 1 (got {buckets})")
    sets = _label_sets(utt_labels)
    rng = np.random.default_rng([seed, epoch])
    sizes = np.asarray(sizes)
    usable = np.flatnonzero(sizes <= max_tokens)
    limit = max_sentences if max_sentences is not None else len(sizes) + 1
    batches: List[List[int]] = []
    by_length = usable[np.argsort(sizes[usable], kind="stable")] if buckets > 1 else usable
    for members in np.array_split(by_length, min(buckets, max(len(usable), 1))):
        unusable = np.ones(len(sizes), dtype=bool)
        unusable[members] = False
        pool = _LabelPool(sets, sizes, rng, unusable)
        smallest = int(sizes[members].min()) if len(members) else 0
        batches.extend(_fill(pool, sets.masks, max_tokens, limit, smallest))
    return [batches[i] for i in rng.permutation(len(batches))]


def _fill(pool: _LabelPool, masks: List[int], max_tokens: int, limit: int, smallest: int) -> List[List[int]]:
    """The batches of every unused utterance of ``pool``."""
    psizes, candidate = pool.sizes, pool.candidate
    batches: List[List[int]] = []
    while pool.unused:
        batch: List[int] = []
        longest = 0  # size of the batch's longest utterance
        once = twice = failed = 0  # label bitmasks: held once, held twice or more, no fitting utterance
        while True:
            n = len(batch) + 1
            if n > limit or longest * n > max_tokens or max_tokens // n < smallest:
                break  # full: no utterance fits any more
            # Held once: complete the pair first.  Else the rarest label the batch lacks, if two
            # more utterances can still fit.
            want = once & ~twice & ~failed
            need = 1
            if not want:
                n += 1
                if n > limit or longest * n > max_tokens or max_tokens // n < smallest:
                    break
                want, need = pool.active & ~once & ~failed, 2
                if not want:
                    break
            bit = want & -want
            label = bit.bit_length() - 1
            picked: List[int] = []
            for _ in range(need):
                n = len(batch) + 1  # the largest utterance one more member may be
                cap = -1 if n > limit or longest * n > max_tokens else max_tokens // n
                utt = candidate(label, cap, picked) if cap >= smallest else None
                if utt is None:
                    break
                picked.append(utt)
                batch.append(utt)
                longest = max(longest, psizes[utt])
            if len(picked) < need:  # the pair cannot be completed: take the utterances out again
                failed |= bit
                if picked:
                    del batch[len(batch) - len(picked):]
                    longest = max((psizes[u] for u in batch), default=0)
                continue
            for utt in picked:
                pool.set_used(utt)
                m = masks[utt]
                twice |= once & m
                once |= m
        if not batch:
            # What is left holds only labels no other unused utterance has: one per batch.
            batches.extend([u] for u, used in enumerate(pool.used) if not used)
            break
        batches.append(batch)
    return batches


def pair_coverage(batches: List[List[int]], utt_labels: Union[LabelSets, Sequence[np.ndarray]]) -> float:
    """Fraction of (batch, label) occurrences whose label is held by >= 2 of the batch's utterances."""
    masks = _label_sets(utt_labels).masks
    paired = total = 0
    for batch in batches:
        once = twice = 0
        for utt in batch:
            m = masks[utt]
            twice |= once & m
            once |= m
        total += once.bit_count()
        paired += twice.bit_count()
    return paired / max(total, 1)


def audio_share(batches: List[List[int]], sizes: np.ndarray) -> float:
    """Real samples / batched samples, each batch padded to its longest member (fairseq's collation)."""
    sizes = np.asarray(sizes)
    real = padded = 0
    for batch in batches:
        b = sizes[batch]
        real += int(b.sum())
        padded += int(b.max()) * len(batch)
    return real / max(padded, 1)
