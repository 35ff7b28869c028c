import numpy as np
import pytest

from sslasr_plugin.decoding.report import paired_bootstrap, utterance_errors


def test_utterance_errors_by_hand():
    errs = utterance_errors([("AB C", "AB"), ("X", "X"), ("HI YOU", "HI YOUR")])
    assert errs["char_errors"].tolist() == [2, 0, 1]  # " C" deleted; nothing; "R" inserted
    assert errs["char_total"].tolist() == [4, 1, 6]
    assert errs["word_errors"].tolist() == [1, 0, 1]
    assert errs["word_total"].tolist() == [2, 1, 2]


def test_identical_systems_differ_by_exactly_nothing():
    errors = np.arange(40) % 7
    assert paired_bootstrap(errors, errors, np.full(40, 20)) == (0.0, 0.0, 0.0)


def test_one_error_fewer_everywhere_is_a_sure_difference():
    # 10 reference characters per utterance, A one error fewer in each: -10 points in every resample.
    b = np.random.default_rng(1).integers(1, 6, size=50)
    delta, lo, hi = paired_bootstrap(b - 1, b, np.full(50, 10))
    assert delta == pytest.approx(-10.0) and lo == pytest.approx(-10.0) and hi == pytest.approx(-10.0)


def test_offsetting_differences_give_an_interval_around_zero():
    a = np.array([0, 4] * 30)
    b = np.array([4, 0] * 30)
    delta, lo, hi = paired_bootstrap(a, b, np.full(60, 20), samples=4000)
    assert delta == 0.0 and lo < -1.0 < 1.0 < hi
    # Swapping the systems mirrors the interval (same resamples).
    rdelta, rlo, rhi = paired_bootstrap(b, a, np.full(60, 20), samples=4000)
    assert (rdelta, rlo, rhi) == pytest.approx((-delta, -hi, -lo))


def test_pairing_matters():
    # B's errors track A's hard utterances: paired, the 1-error gap per utterance is certain, while
    # the systems' own spreads (0..40 errors) would swamp an unpaired comparison.
    hard = np.repeat([0, 40], 30)
    delta, lo, hi = paired_bootstrap(hard, hard + 1, np.full(60, 50))
    assert hi < 0 and delta == pytest.approx(-2.0)


def test_mismatched_lists_are_refused():
    with pytest.raises(ValueError, match="equal, non-empty"):
        paired_bootstrap([1, 2], [1], [3, 3])
