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


def _generate_log(path, pairs):
    # fairseq-generate's T- and D- lines (D- has the score column), in a shuffled id order
    lines = []
    for i, (ref, hyp) in reversed(list(enumerate(pairs))):
        lines += [f"T-{i}\t{ref}", f"D-{i}\t-0.5\t{hyp}"]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_paired_table_against_a_named_system(tmp_path):
    from sslasr_plugin.decoding.report import main, paired_table

    refs = ["AB CD", "EF GH"]
    base = _generate_log(tmp_path / "base.txt", [(r, r) for r in refs])  # no errors
    arm = _generate_log(tmp_path / "arm.txt", [("AB CD", "AB CE"), ("EF GH", "EF GH")])  # 1 of 10 chars, 1 of 4 words
    table = paired_table({"arm/test": arm, "base/test": base}, "base").split("\n")
    assert table[0].endswith("| ΔCER vs base [95% CI] | ΔWER vs base [95% CI] |")
    assert table[2] == "| arm/test | 2 | 4 | 25.00 | 10.00 | +10.00 [+0.00, +20.00] | +25.00 [+0.00, +50.00] |"
    assert table[3] == "| base/test | 2 | 4 | 0.00 | 0.00 |  |  |"
    assert main(["--against", "base", f"arm/test={arm}", f"base/test={base}"]) == 0


def test_paired_table_refuses_what_it_cannot_pair(tmp_path, capsys):
    from sslasr_plugin.decoding.report import main

    base = _generate_log(tmp_path / "base.txt", [("AB", "AB")])
    other = _generate_log(tmp_path / "other.txt", [("XY", "XY")])
    assert main(["--against", "base", f"arm/test={other}", f"base/test={base}"]) == 2
    assert "decode different references" in capsys.readouterr().err
    assert main(["--against", "base", f"arm/test_ood={base}", f"base/test={base}"]) == 2
    assert "add base/test_ood=" in capsys.readouterr().err
