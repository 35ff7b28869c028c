"""slimIPL's labeler decoders other than greedy in real fairseq-hydra-train runs: beam search with an
n-gram LM (task.pl_decoder=lm), the true transcripts (task.pl_decoder=oracle, the ceiling
measurement), and fixed labels from a file (task.pl_decoder=file, another model's)."""
import re

import pytest

from data_prep.lm import build_lms
from sslasr_plugin.checkpoint import load_checkpoint
from tests.recipes.test_slimipl_runs import _train, _update_kinds

pytestmark = pytest.mark.slow


def test_pseudo_labels_are_lexicon_words_with_a_word_lm(tiny_corpus, tmp_path):
    text = [line for split in ("labeled", "unlabeled") for line in (tiny_corpus / f"{split}.wrd").read_text().splitlines()]
    lm = build_lms(str(tmp_path / "lm"), word_order=3, letter_order=4, sentences=text)
    # A 1-update model's greedy labels are blanks; a large word score makes beam search emit words.
    proc = _train(tiny_corpus, tmp_path / "run", "task.pl_decoder=lm", f"task.kenlm_model={lm / 'word.bin'}",
                  f"task.lexicon={lm / 'lexicon.txt'}", "task.word_score=100", "task.pl_lm_weight=1", "task.pl_beam=20",
                  "task.beam_threshold=1000")  # keep the untrained model's letters in the beam
    assert _update_kinds(proc.stdout) == ["sup", "fill", "pl"]  # the first pseudo-labeled update fills the cache
    cache = load_checkpoint(tmp_path / "run" / "checkpoint_last.pt")["extra_state"]["SlimIplTask"]["slimipl_cache"]
    symbols = [line.split()[0] for line in (tiny_corpus / "dict.ltr.txt").read_text().splitlines()]
    lexicon = {line.split("\t")[0] for line in (lm / "lexicon.txt").read_text().splitlines()}
    words = []
    for tokens in cache["entries"][0]["parts"][0]["tokens"]:
        letters = "".join(" " if symbols[t - 4] == "|" else symbols[t - 4] for t in tokens.tolist())  # 4 specials
        words += letters.split()
    assert words and set(words) <= lexicon


def test_lm_labels_need_a_kenlm_model(tiny_corpus, tmp_path):
    proc = _train(tiny_corpus, tmp_path, "task.pl_decoder=lm", check=False)
    assert proc.returncode != 0 and "task.pl_decoder=lm needs" in proc.stdout + proc.stderr


def _letters(tokens, symbols):
    return " ".join(symbols[t - 4] for t in tokens.tolist())  # 4 specials before the letters


def test_oracle_labels_are_the_true_transcripts_of_the_batch(tiny_corpus, tmp_path):
    proc = _train(tiny_corpus, tmp_path, "task.pl_decoder=oracle")
    assert _update_kinds(proc.stdout) == ["sup", "fill", "pl"]
    assert re.search(r"pl_cer[= ]0(\.0+)?(?![\d.])", proc.stdout)  # logged against the same transcripts it trains on
    cache = load_checkpoint(tmp_path / "checkpoint_last.pt")["extra_state"]["SlimIplTask"]["slimipl_cache"]
    symbols = [line.split()[0] for line in (tiny_corpus / "dict.ltr.txt").read_text().splitlines()]
    truth = (tiny_corpus / "unlabeled.ltr").read_text().splitlines()
    n_labeled = len((tiny_corpus / "labeled.tsv").read_text().splitlines()) - 1
    (part,) = cache["entries"][0]["parts"]
    assert len(part["ids"]) > 0
    for i, tokens in zip(part["ids"].tolist(), part["tokens"]):  # the stream's ids: labeled first, then unlabeled
        assert _letters(tokens, symbols) == truth[i - n_labeled]


def test_oracle_labels_need_their_transcripts(tiny_corpus, tmp_path):
    proc = _train(tiny_corpus, tmp_path / "a", "task.pl_decoder=oracle", "task.oracle_labels=null", check=False)
    assert proc.returncode != 0 and "task.pl_decoder=oracle trains on the unlabeled audio's true transcripts" in (
        proc.stdout + proc.stderr)
    proc = _train(tiny_corpus, tmp_path / "b", "task.pl_decoder=oracle", "task.oracle_labels=nope", check=False)
    assert proc.returncode != 0 and "unlabeled.nope, which does not exist" in proc.stdout + proc.stderr


def test_file_labels_are_trained_on_and_scored_against_the_true_transcripts(corpus_copy, tmp_path):
    truth = (corpus_copy / "unlabeled.ltr").read_text().splitlines()
    # another model's labels: here every utterance's true letters with its first word dropped
    fixed = [line.split(" | ", 1)[-1] for line in truth]
    assert fixed != truth
    (corpus_copy / "unlabeled.teacher.ltr").write_text("\n".join(fixed) + "\n")
    proc = _train(corpus_copy, tmp_path / "run", "task.pl_decoder=file", "task.pl_labels=teacher.ltr")
    assert _update_kinds(proc.stdout) == ["sup", "fill", "pl"]
    cer = [float(x) for x in re.findall(r"pl_cer[= ]([\d.]+)", proc.stdout)]
    assert cer and min(cer) > 0  # the file's labels against the true transcripts, not against themselves
    cache = load_checkpoint(tmp_path / "run" / "checkpoint_last.pt")["extra_state"]["SlimIplTask"]["slimipl_cache"]
    symbols = [line.split()[0] for line in (corpus_copy / "dict.ltr.txt").read_text().splitlines()]
    n_labeled = len((corpus_copy / "labeled.tsv").read_text().splitlines()) - 1
    (part,) = cache["entries"][0]["parts"]
    assert len(part["ids"]) > 0
    for i, tokens in zip(part["ids"].tolist(), part["tokens"]):
        assert _letters(tokens, symbols) == fixed[i - n_labeled]


def test_file_labels_need_their_file_with_a_line_per_utterance(corpus_copy, tmp_path):
    proc = _train(corpus_copy, tmp_path / "a", "task.pl_decoder=file", check=False)
    assert proc.returncode != 0 and "task.pl_decoder=file trains on fixed pseudo-labels" in proc.stdout + proc.stderr
    proc = _train(corpus_copy, tmp_path / "b", "task.pl_decoder=file", "task.pl_labels=nope", check=False)
    assert proc.returncode != 0 and "unlabeled.nope, which does not exist" in proc.stdout + proc.stderr
    lines = (corpus_copy / "unlabeled.ltr").read_text().splitlines()
    (corpus_copy / "unlabeled.short.ltr").write_text("\n".join(lines[:-1]) + "\n")
    proc = _train(corpus_copy, tmp_path / "c", "task.pl_decoder=file", "task.pl_labels=short.ltr", check=False)
    assert proc.returncode != 0 and (f"unlabeled.short.ltr has {len(lines) - 1} usable lines, unlabeled.tsv "
                                     f"{len(lines)} utterances") in proc.stdout + proc.stderr
    (corpus_copy / "unlabeled.odd.ltr").write_text("\n".join(lines[:1] + ["A B | 7 |"] + lines[2:]) + "\n")
    proc = _train(corpus_copy, tmp_path / "d", "task.pl_decoder=file", "task.pl_labels=odd.ltr", check=False)
    assert proc.returncode != 0 and "unlabeled.odd.ltr, line 2 (of the usable lines): 7 not in the dictionary" in (
        proc.stdout + proc.stderr)


def test_label_cer_is_logged_per_unlabeled_subset(tiny_corpus, tmp_path):
    # one batch holds every utterance of both subsets, so the filling read labels both
    proc = _train(tiny_corpus, tmp_path, "task.unlabeled_subsets='unlabeled,unlabeled_ood'", "dataset.max_tokens=3000000")
    line = next(line for line in proc.stdout.splitlines() if "[train_inner]" in line and "pl_cer_unlabeled_ood" in line)
    cer = {k: float(v) for k, v in re.findall(r"(pl_cer\w*)=([\d.]+)", line)}
    assert set(cer) == {"pl_cer", "pl_cer_unlabeled", "pl_cer_unlabeled_ood"}
    # the whole is the subsets' token-weighted mean: between the two
    assert min(cer["pl_cer_unlabeled"], cer["pl_cer_unlabeled_ood"]) - 0.01 <= cer["pl_cer"] <= max(
        cer["pl_cer_unlabeled"], cer["pl_cer_unlabeled_ood"]) + 0.01
