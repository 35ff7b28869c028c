"""fairseq-generate with a tiny KenLM LM on the tiny corpus's CTC model (real command lines)."""
import json
import re
import sys

import pytest

from tests.helpers import generate, run_cli
from data_prep.lm import build_lms

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus_lm(tiny_corpus, tmp_path_factory):
    """Word and letter LMs from the tiny corpus's labeled transcripts."""
    sentences = (tiny_corpus / "labeled.wrd").read_text().splitlines()
    return build_lms(str(tmp_path_factory.mktemp("lm")), word_order=3, letter_order=5, sentences=sentences)


def hypotheses(stdout):
    return {line.split("\t")[0]: line.split("\t")[2] for line in stdout.splitlines() if line.startswith("D-")}


def test_greedy_whatever_the_beam_without_an_lm(tiny_corpus, ctc_checkpoint):
    beam1 = generate(tiny_corpus, ctc_checkpoint, "test").stdout
    beam50 = generate(tiny_corpus, ctc_checkpoint, "test", "--beam", "50").stdout
    assert hypotheses(beam1) == hypotheses(beam50) and len(hypotheses(beam1)) == 8


def test_lexicon_decoding_outputs_lexicon_words(tiny_corpus, ctc_checkpoint, corpus_lm):
    # A large word score makes the decoder emit words even from a 3-update model.
    proc = generate(tiny_corpus, ctc_checkpoint, "test", "--beam", "20", "--kenlm-model", corpus_lm / "word.bin",
                    "--lexicon", corpus_lm / "lexicon.txt", "--lm-weight", "1", "--word-score", "100",
                    "--beam-threshold", "1000")  # keep the untrained model's letters in the beam
    lexicon = {line.split("\t")[0] for line in (corpus_lm / "lexicon.txt").read_text().splitlines()}
    words = [w for hyp in hypotheses(proc.stdout).values() for w in hyp.split()]
    assert len(hypotheses(proc.stdout)) == 8 and words and set(words) <= lexicon
    assert re.search(r"Generate test with beam=20: WER: [\d.]+", proc.stdout + proc.stderr)


def test_lexicon_free_decoding_runs(tiny_corpus, ctc_checkpoint, corpus_lm):
    proc = generate(tiny_corpus, ctc_checkpoint, "test", "--beam", "20", "--kenlm-model", corpus_lm / "letter.bin",
                    "--lm-weight", "1")
    assert len(hypotheses(proc.stdout)) == 8
    assert re.search(r"Generate test with beam=20: WER: [\d.]+", proc.stdout + proc.stderr)


def test_missing_lm_names_the_file(tiny_corpus, ctc_checkpoint, tmp_path):
    proc = generate(tiny_corpus, ctc_checkpoint, "test", "--kenlm-model", tmp_path / "none.bin", check=False)
    assert proc.returncode != 0 and f"KenLM model {tmp_path / 'none.bin'} does not exist" in proc.stderr


def test_tune_lm_prints_the_best_pair_and_decodes_with_it(tiny_corpus, ctc_checkpoint, corpus_lm, tmp_path):
    proc = run_cli([sys.executable, "-m", "sslasr_plugin.decoding.tune_lm", tiny_corpus, "--path", ctc_checkpoint,
                    "--kenlm-model", corpus_lm / "word.bin", "--lexicon", corpus_lm / "lexicon.txt", "--beam", "5",
                    "--lm-weights", "0", "1", "--scores", "0", "20", "--decode", "test",
                    "--results-path", tmp_path / "decode"])
    rows = re.findall(r"^\| ([\d.]+) \| ([\d.-]+) \| ([\d.]+) \|", proc.stdout, re.M)
    assert [(w, s) for w, s, _ in rows] == [("0.0", "0.0"), ("0.0", "20.0"), ("1.0", "0.0"), ("1.0", "20.0")]
    best = re.search(r"best on valid by WER: --lm-weight ([\d.]+) --word-score ([\d.-]+) \(WER ([\d.]+)", proc.stdout)
    assert float(best.group(3)) == min(float(wer) for _, _, wer in rows)
    # letters per reference letter: a word score of 20 inserts words, so it adds letters
    ratios = {(w, s): float(r) for w, s, r in re.findall(r"^\| ([\d.]+) \| ([\d.-]+) \| [\d.]+ \| [\d.]+ \| ([\d.]+) \|",
                                                          proc.stdout, re.M)}
    assert len(ratios) == 4 and ratios[("1.0", "20.0")] >= ratios[("1.0", "0.0")]
    assert re.search(r"^\| test \| 8 \| \d+ \|", proc.stdout, re.M)
    # the first row: the same emissions without the LM, as fairseq-generate decodes valid greedily
    greedy = re.search(r"^\| greedy, no LM \| \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|", proc.stdout, re.M)
    plain = generate(tiny_corpus, ctc_checkpoint, "valid")
    plain = re.search(r"Generate valid with beam=1: WER: ([\d.]+)", plain.stdout + plain.stderr)
    assert greedy and plain and float(greedy.group(1)) == pytest.approx(float(plain.group(1)), abs=0.01)
    assert (tmp_path / "decode" / "test" / "generate-test.txt").exists()

    # --metric cer: the pair of lowest CER (pseudo-labels for a letter model), written for scripts
    proc = run_cli([sys.executable, "-m", "sslasr_plugin.decoding.tune_lm", tiny_corpus, "--path", ctc_checkpoint,
                    "--kenlm-model", corpus_lm / "word.bin", "--lexicon", corpus_lm / "lexicon.txt", "--beam", "5",
                    "--lm-weights", "0", "1", "--scores", "0", "20", "--metric", "cer",
                    "--best-json", tmp_path / "best.json"])
    cers = [float(c) for c in re.findall(r"^\| [\d.]+ \| [\d.-]+ \| [\d.]+ \| ([\d.]+) \|", proc.stdout, re.M)]
    chosen = json.loads((tmp_path / "best.json").read_text())
    assert len(cers) == 4 and chosen["metric"] == "cer" and round(chosen["cer"], 2) == min(cers)
    assert set(chosen["greedy"]) == {"wer", "cer", "length_ratio"}
    assert "best on valid by CER" in proc.stdout and 0 <= chosen["length_ratio"]


def test_lm_pseudo_labels_spell_lexicon_words_and_report_error_rates(tiny_corpus, ctc_checkpoint, corpus_lm,
                                                                     tmp_path):
    common = [sys.executable, "-m", "data_prep.pseudo_labels", "--teacher", ctc_checkpoint, "--data", tiny_corpus,
              "--splits", "valid", "--no-progress"]
    greedy = run_cli(common + ["--out", tmp_path / "greedy"])
    with_lm = run_cli(common + ["--out", tmp_path / "lm", "--kenlm-model", corpus_lm / "word.bin",
                                "--lexicon", corpus_lm / "lexicon.txt", "--beam", "20", "--word-score", "100",
                                # a 3-update model's letters sit far below blank: keep them in the beam
                                "--beam-threshold", "1000"])
    for proc in (greedy, with_lm):
        assert re.search(r"valid: pseudo-label WER [\d.]+, CER [\d.]+ against valid.ltr", proc.stdout)
    meta = json.loads((tmp_path / "lm" / "plab.json").read_text())
    assert meta["rule"].startswith("forced alignment") and meta["oracle_error_rates"]["valid"]["utterances"] == 8
    lexicon = {line.split("\t")[0] for line in (corpus_lm / "lexicon.txt").read_text().splitlines()}
    spelled = [line.replace(" ", "").replace("|", " ").split()
               for line in (tmp_path / "lm" / "valid.plab.ltr").read_text().splitlines()]
    assert any(spelled) and {w for words in spelled for w in words} <= lexicon
    # One label per encoder frame either way; the LM path only moves which token a frame carries.
    for lm_row, greedy_row in zip(*[(tmp_path / d / "valid.plab").read_text().splitlines() for d in ("lm", "greedy")]):
        assert len(lm_row.split()) == len(greedy_row.split())
