"""slimIPL's labeler decoding with an n-gram LM (task.pl_decoder=lm) in a real fairseq-hydra-train run."""
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
