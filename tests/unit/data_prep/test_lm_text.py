"""data_prep.lm: the LM text leaves out every evaluation sentence, and the LM files it writes."""
import json

import pytest

from data_prep.corpus import EVAL_SPLITS, PRESETS, eval_pool_sentences, load_sentences, plan_corpus
from data_prep.lm import LmError, build_lms, lexicon_coverage, lexicon_words, lm_text, main


@pytest.fixture(scope="module")
def held_out():
    sentences = load_sentences()
    splits = {"eval": set(eval_pool_sentences()), "unlabeled": set()}
    for name, sizes in PRESETS.items():
        for utt in plan_corpus(sentences, sizes, seed=1):
            if utt.split in EVAL_SPLITS:
                splits["eval"].add(utt.text)
            elif utt.split.startswith("unlabeled"):
                splits["unlabeled"].add(utt.text)
    return splits


def test_no_eval_or_unlabeled_sentence_in_the_lm_text(held_out):
    text, summary = lm_text()
    assert len(text) > 5000 and not summary["includes_unlabeled"]
    assert not set(text) & held_out["eval"]
    assert not set(text) & held_out["unlabeled"]


def test_include_unlabeled_keeps_them_but_never_eval(held_out):
    text, summary = lm_text(include_unlabeled=True, extra_fortunes=False)
    assert summary["includes_unlabeled"]
    assert held_out["unlabeled"] - held_out["eval"] <= set(text)
    assert not set(text) & held_out["eval"]


def ngrams(arpa):
    """The n-grams an ARPA file lists (its lines 'log10 prob<TAB>n-gram[<TAB>backoff]')."""
    return {line.split("\t")[1] for line in arpa.read_text().splitlines() if line.count("\t") >= 1}


def test_build_lms_writes_both_lms_and_the_lexicon(tmp_path):
    out = build_lms(str(tmp_path / "lm"), word_order=2, letter_order=3, sentences=["A CAT", "THE CAT'S HAT"])
    assert "CAT'S HAT" in ngrams(out / "word.arpa")
    assert "T ' S" in ngrams(out / "letter.arpa")
    assert (out / "lexicon.txt").read_text().splitlines() == ["A\tA |", "CAT\tC A T |", "CAT'S\tC A T ' S |",
                                                             "HAT\tH A T |", "THE\tT H E |"]
    assert (out / "word.bin").stat().st_size > 0 and (out / "letter.bin").stat().st_size > 0
    assert json.loads((out / "lm.json").read_text())["sentences"] == 2
    with pytest.raises(LmError, match="lm.json exists; pass --overwrite"):
        build_lms(str(out), sentences=["A CAT"])
    # A build interrupted before lm.json (written last) is rebuilt, not refused.
    (out / "lm.json").unlink()
    build_lms(str(out), word_order=2, letter_order=3, sentences=["A DOG"])
    assert json.loads((out / "lm.json").read_text())["sentences"] == 1 and "DOG" in ngrams(out / "word.arpa")


def test_lexicon_coverage_counts_words_letters_and_utterances(tmp_path, capsys):
    (tmp_path / "lexicon.txt").write_text("A\tA |\nBC\tB C |\n")
    # 5 words, 2 outside (DEF, G): 40%; their 4 of 8 letters; 2 of 3 utterances hold one
    transcripts = ["A BC", "DEF A", "G"]
    assert lexicon_coverage(lexicon_words(tmp_path / "lexicon.txt"), transcripts) == pytest.approx(
        {"words": 5, "oov_words": 40.0, "oov_letters": 50.0, "utterances_with_oov": 100 * 2 / 3})
    (tmp_path / "valid.wrd").write_text("\n".join(transcripts) + "\n")
    assert main(["--out", str(tmp_path), "--coverage", str(tmp_path), "--splits", "valid"]) == 0
    assert "| valid | 5 | 40.0 | 50.0 | 67 |" in capsys.readouterr().out
    # a split without transcripts is named, and nothing is built
    assert main(["--out", str(tmp_path), "--coverage", str(tmp_path), "--splits", "test"]) == 2
    assert f"{tmp_path / 'test.wrd'} does not exist" in capsys.readouterr().err
    assert not (tmp_path / "lm.json").exists()
