"""Segment rules, Viterbi re-alignment, unit contexts and decision-tree tying on hand-made cases."""
import random

import numpy as np
import pytest

from data_prep.align import midpoint_segments, segment_labels, spike_segments, viterbi_segments
from data_prep.pseudo_labels import class_transcript, letter_runs
from data_prep.units import TiedUnits, TyingError, contexts, tie_units


def test_midpoint_segments_centre_each_token_on_its_spike():
    # spikes at frames 2, 6-7 and 9 of 14: boundaries halfway between spikes (4, 8); the first
    # token reaches back as far as it reaches forward (1 frame), the last forward (1 frame)
    starts, lead, trail = midpoint_segments([(2, 3), (6, 8), (9, 10)], 14)
    assert (starts, lead, trail) == ([0, 1, 4, 8, 11], True, True)
    # adjacent spikes keep one frame each; no frames left outside: no silence segments
    assert midpoint_segments([(0, 1), (1, 2)], 2) == ([0, 1], False, False)
    assert spike_segments([(2, 3), (6, 8), (9, 10)], 14) == ([0, 6, 9], False, False)


def test_segment_labels_cover_every_frame_in_order():
    assert segment_labels(7, [0, 1, 4], ["a", "b", "c"]) == ["a", "b", "b", "b", "c", "c", "c"]


def test_viterbi_keeps_the_order_and_one_frame_per_class():
    lp = np.log(np.array([[.9, .1], [.2, .8], [.9, .1], [.9, .1], [.9, .1]]))
    # classes 0, 1, 0: frame 1 prefers class 1 and frame 2 class 0 again (path probability
    # .9 * .8 * .9 ** 3; any other split has a .1 or .2 factor more)
    assert viterbi_segments(lp, [0, 1, 0]) == [0, 1, 2]
    # the path ends in the last class although frames 3-4 prefer class 1: 0 0 0 1 0 (.9 .2 .9 .9 .1)
    # beats 0 1 0 0 0 (.9 .8 .9 .1 .1)
    lp = np.log(np.array([[.9, .1], [.2, .8], [.9, .1], [.1, .9], [.1, .9]]))
    assert viterbi_segments(lp, [0, 1, 0]) == [0, 3, 4]
    # one class everywhere better for class 1 still leaves class 0 its first frame
    assert viterbi_segments(np.log(np.array([[.1, .9]] * 4)), [0, 1]) == [0, 1]
    with pytest.raises(Exception, match="3 frames cannot hold 4 segments"):
        viterbi_segments(np.zeros((3, 2)), [0, 1, 0, 1])


def test_contexts_skip_the_separator_and_give_word_positions():
    assert contexts("A | C A T |".split()) == [
        ("A", "#", "C", "S"), ("|", "A", "C", "-"), ("C", "A", "A", "B"), ("A", "C", "T", "I"),
        ("T", "A", "#", "E"), ("|", "T", "#", "-")]


def _stats(n, mean, dim=2):
    x = np.random.default_rng(int(mean * 10) + n).normal(mean, 1.0, (n, dim))
    return np.concatenate([[n], x.sum(0), (x ** 2).sum(0)])


def test_tying_splits_on_the_context_that_changes_the_acoustics():
    units = {("A", "B", "C", "I"): _stats(40, 0.0), ("A", "D", "C", "I"): _stats(40, 5.0),
             ("A", "D", "E", "I"): _stats(40, 5.1), ("T", "A", "#", "E"): _stats(50, 2.0),
             ("Q", "A", "#", "E"): _stats(3, 2.0)}
    names = tie_units(units, classes=3, min_frames=30)
    # A splits by its left letter (B apart from D), T is one class, and the rare Q (3 frames)
    # joins the tree whose Gaussian it fits: T's
    assert names[("A", "D", "C", "I")] == names[("A", "D", "E", "I")] != names[("A", "B", "C", "I")]
    assert names[("Q", "A", "#", "E")] == names[("T", "A", "#", "E")]
    assert len(set(names.values())) == 3
    # the same data in another order gives the same classes
    shuffled = list(units.items())
    random.Random(0).shuffle(shuffled)
    assert tie_units(dict(shuffled), classes=3, min_frames=30) == names
    # no class below min_frames: 60 frames per class cannot split A's 120 frames into 3 parts
    frames = {}
    for unit, name in tie_units(units, classes=10, min_frames=60).items():
        frames[name] = frames.get(name, 0) + units[unit][0]
    assert min(frames.values()) >= 60
    with pytest.raises(TyingError, match="ask for at least 2 classes"):
        tie_units(units, classes=1, min_frames=30)
    with pytest.raises(TyingError, match="--min-frames 0: a class needs at least 1 frame"):
        tie_units(units, classes=3, min_frames=0)


def test_unseen_units_take_the_nearest_seen_context():
    tied = TiedUnits({("A", "B", "C", "I"): "A_0", ("A", "D", "E", "B"): "A_1", ("|", "A", "C", "-"): "|_0"})
    assert tied(("A", "D", "C", "B")) == "A_1"  # two fields in common with A_1, one with A_0
    assert tied(("Z", "A", "C", "I")) == "|_0"  # a letter never seen: the separator's units


def test_class_transcript_reads_letters_from_class_runs():
    class Dictionary(list):
        pass

    d = Dictionary(["<s>", "<pad>", "</s>", "<unk>", "H_0", "I_2", "|_1", "I_0"])
    assert class_transcript(np.array([4, 4, 5, 7, 7, 6, 6]), d) == "H I I |"
    # read a letter per run of one letter instead: the two runs of I (classes I_2, I_0) once
    assert letter_runs("H I I | | A") == "H I | A" and letter_runs("") == ""
