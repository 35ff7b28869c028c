"""Context-dependent letters tied into N classes by decision trees, as chenones tie graphemes.

A unit is a letter in context: (letter, left letter, right letter, word position).  Neighbours
skip the word separator '|' (coarticulation crosses word boundaries); '#' is the utterance edge.
Word position: B(egin), I(nside), E(nd), S(ingle-letter word); the separator's is '-'.

Tying follows the tree-based state tying of hybrid systems (Young, Odell, Woodland 1994): one
tree per letter, grown best split first over all trees by the gain in log-likelihood of the
frames' acoustic features under one diagonal Gaussian per leaf, until N leaves; each leaf must
keep ``min_frames`` frames.  Questions ask about the left or right letter (each letter, vowel,
utterance edge) and the word position.  Letters with fewer than ``min_frames`` frames join the
tree whose Gaussian they cost least likelihood to join; letters never seen join the separator's.
Everything is sorted before it is grown, so the same data gives the same classes.
"""
import heapq
from typing import Dict, List, Sequence, Tuple

import numpy as np

SEPARATOR, EDGE = "|", "#"
VOWELS = frozenset("AEIOUY")
POSITIONS = ("B", "I", "E", "S", "-")
Unit = Tuple[str, str, str, str]  # (letter, left, right, position)
_VAR_FLOOR = 1e-3


class TyingError(ValueError):
    pass


def class_letter(name: str) -> str:
    """The letter of a class name '<letter>_<k>' (tie_units' names)."""
    return name.rsplit("_", 1)[0]


def contexts(tokens: Sequence[str]) -> List[Unit]:
    """The unit of every token of a transcript (letters and '|' separators, as in {split}.ltr)."""
    letters = [i for i, t in enumerate(tokens) if t != SEPARATOR]
    units = []
    for i, t in enumerate(tokens):
        k = int(np.searchsorted(letters, i))  # letters before token i
        left = tokens[letters[k - 1]] if k else EDGE
        after = k + (t != SEPARATOR)
        right = tokens[letters[after]] if after < len(letters) else EDGE
        if t == SEPARATOR:
            position = "-"
        else:
            starts = i == 0 or tokens[i - 1] == SEPARATOR
            ends = i + 1 == len(tokens) or tokens[i + 1] == SEPARATOR
            position = "S" if starts and ends else "B" if starts else "E" if ends else "I"
        units.append((t, left, right, position))
    return units


def questions(symbols: Sequence[str]) -> List[Tuple[str, callable]]:
    """(name, test on a unit) in a fixed order: left/right is each symbol, a vowel, the edge; positions."""
    qs = []
    for side, k in (("left", 1), ("right", 2)):
        qs += [(f"{side}={s}", lambda u, k=k, s=s: u[k] == s) for s in sorted(symbols)]
        qs += [(f"{side}=vowel", lambda u, k=k: u[k] in VOWELS), (f"{side}=edge", lambda u, k=k: u[k] == EDGE)]
    qs += [(f"position={p}", lambda u, p=p: u[3] == p) for p in POSITIONS[:4]]
    qs += [("position=B|S", lambda u: u[3] in "BS"), ("position=E|S", lambda u: u[3] in "ES")]
    return qs


def _loglik(stats: np.ndarray) -> np.ndarray:
    """Log-likelihood of each cluster's frames under its ML diagonal Gaussian; ``stats`` (..., 1+2D)
    holds count, sum and sum of squares."""
    n = np.maximum(stats[..., :1], 1e-9)
    d = (stats.shape[-1] - 1) // 2
    var = np.maximum(stats[..., 1 + d:] / n - (stats[..., 1:1 + d] / n) ** 2, _VAR_FLOOR)
    return -0.5 * n[..., 0] * (np.log(var).sum(-1) + d * (1 + np.log(2 * np.pi)))


class _Leaf:
    def __init__(self, root: str, units: List[Unit], answers: np.ndarray, stats: np.ndarray, min_frames: int):
        self.root, self.units, self.answers, self.stats = root, units, answers, stats
        total = stats.sum(0)
        yes = answers.T.astype(np.float64) @ stats  # (Q, 1+2D)
        no = total[None] - yes
        gain = _loglik(yes) + _loglik(no) - _loglik(total)
        gain[(yes[:, 0] < min_frames) | (no[:, 0] < min_frames)] = -np.inf
        self.question = int(np.argmax(gain))  # the first of equal gains: deterministic
        self.gain = float(gain[self.question])

    def split(self, min_frames: int):
        yes = self.answers[:, self.question]
        return [_Leaf(self.root, [u for u, a in zip(self.units, yes) if a == side], self.answers[yes == side],
                      self.stats[yes == side], min_frames) for side in (True, False)]


def tie_units(unit_stats: Dict[Unit, np.ndarray], classes: int, min_frames: int) -> Dict[Unit, str]:
    """Class name ('<letter>_<k>') of every unit, from per-unit feature statistics (count, sum,
    sum of squares) of the aligned frames: at most ``classes`` classes of ``min_frames`` frames."""
    if min_frames < 1:
        raise TyingError(f"--min-frames {min_frames}: a class needs at least 1 frame (the default is 30)")
    if not unit_stats:
        raise TyingError("no aligned frames to tie")
    units = sorted(unit_stats)
    stats = np.stack([unit_stats[u] for u in units]).astype(np.float64)
    letter_frames: Dict[str, float] = {}
    for u, s in zip(units, stats):
        letter_frames[u[0]] = letter_frames.get(u[0], 0) + s[0]
    roots = sorted(letter for letter, n in letter_frames.items() if n >= min_frames)
    if not roots:
        raise TyingError(f"no letter has {min_frames} aligned frames; lower the minimum frames per class")
    if classes < len(roots):
        raise TyingError(f"{classes} classes cannot hold the {len(roots)} letters with >= {min_frames} frames "
                         f"each (one tree per letter); ask for at least {len(roots)} classes")
    root_stats = {r: stats[[u[0] == r for u in units]].sum(0) for r in roots}
    home = {r: r for r in roots}
    for letter in sorted(set(letter_frames) - set(roots)):  # rare letters join the nearest tree
        own = stats[[u[0] == letter for u in units]].sum(0)
        cost = {r: _loglik(root_stats[r]) + _loglik(own) - _loglik(root_stats[r] + own) for r in roots}
        home[letter] = min(roots, key=lambda r: (cost[r], r))
    qs = questions(sorted({s for u in units for s in u[1:3]} - {EDGE}))
    answers = np.array([[q(u) for _, q in qs] for u in units], dtype=bool)
    heap, done, order = [], [], 0
    for r in roots:
        mine = np.array([home[u[0]] == r for u in units])
        leaf = _Leaf(r, [u for u, m in zip(units, mine) if m], answers[mine], stats[mine], min_frames)
        heapq.heappush(heap, (-leaf.gain, order, leaf))
        order += 1
    while heap and len(heap) + len(done) < classes:
        gain, _, leaf = heapq.heappop(heap)
        if gain == np.inf:  # no split keeps min_frames on both sides
            done.append(leaf)
            continue
        for child in leaf.split(min_frames):
            heapq.heappush(heap, (-child.gain, order, child))
            order += 1
    leaves = sorted(done + [leaf for _, _, leaf in heap], key=lambda leaf: (leaf.root, min(leaf.units)))
    names, count = {}, {}
    for leaf in leaves:
        k = count.get(leaf.root, 0)
        count[leaf.root] = k + 1
        for u in leaf.units:
            names[u] = f"{leaf.root}_{k}"
    return names


class TiedUnits:
    """The class of any unit, seen in the fitted data or not: a seen unit's own class; else the
    class of the seen unit of its letter with the most context fields in common (ties: the
    first in sorted order); a letter never seen goes by the separator's units."""

    def __init__(self, names: Dict[Unit, str]):
        self.names = names
        self.by_letter: Dict[str, List[Unit]] = {}
        for unit in sorted(names):
            self.by_letter.setdefault(unit[0], []).append(unit)

    def __call__(self, unit: Unit) -> str:
        if unit in self.names:
            return self.names[unit]
        seen = self.by_letter.get(unit[0]) or self.by_letter[SEPARATOR]
        shared = [sum(a == b for a, b in zip(u[1:], unit[1:])) for u in seen]
        return self.names[seen[int(np.argmax(shared))]]
