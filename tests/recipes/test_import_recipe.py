"""An imported corpus trains and decodes: a LibriSpeech-shaped tree from the tiny corpus ->
python -m data_prep.importers.librispeech (the README's command) -> data_prep.check ->
fairseq-hydra-train (3 updates: supervised CTC, joint, slimIPL) -> fairseq-generate."""
import re
import sys

import pytest
from tests.helpers import generate, hydra_train, run_cli
from tests.importer_trees import tiny_utterances, write_librispeech

SUBSETS = (("train-clean-100", "labeled"), ("train-clean-360", "unlabeled"), ("dev-other", "valid"),
           ("test-other", "test"))


@pytest.fixture(scope="module")
def imported_librispeech(tiny_corpus, tmp_path_factory):
    ls = tmp_path_factory.mktemp("ls") / "LibriSpeech"
    for n, (subset, split) in enumerate(SUBSETS):
        write_librispeech(ls / subset, tiny_utterances(tiny_corpus, split), speaker0=100 * (n + 1))
    data = ls.parent / "data"
    run_cli([sys.executable, "-m", "data_prep.importers.librispeech", "--root", ls, "--out", data, "--no-progress",
             "--splits", "labeled=train-clean-100", "unlabeled=train-clean-360", "valid=dev-other",
             "test=test-other"])
    return data


@pytest.mark.slow
def test_imported_librispeech_trains_and_decodes(imported_librispeech, tmp_path):
    data = imported_librispeech
    check = run_cli([sys.executable, "-m", "data_prep.check", "--data", data, "--labels", "ltr"])
    assert "labeled: 24 rows, 0 problem(s)" in check.stdout and "unlabeled: 24 rows, 0 problem(s)" in check.stdout
    save_dir = tmp_path / "exp"
    hydra_train("examples/ctc", "scratch_fbank", data, save_dir)
    proc = generate(data, save_dir / "checkpoint_best.pt", "test")
    assert re.search(r"Generate test with beam=1: WER: \d+\.\d+", proc.stdout + proc.stderr)


@pytest.mark.slow
def test_readme_joint_and_slimipl_commands_on_an_import(imported_librispeech, tmp_path):
    joint = hydra_train("examples/joint", "joint", imported_librispeech, tmp_path / "joint",
                        "task.max_sample_size=560000")
    assert "num_updates=3" in joint.stdout + joint.stderr
    # The recipe's slimIPL 100 h settings, with a 1-update warm-up so that pseudo-labeling starts.
    slimipl = hydra_train("examples/slimipl", "slimipl", imported_librispeech, tmp_path / "slimipl",
                          "task.max_sample_size=560000", "task.sup_updates=1", "task.unsup_updates=4",
                          "task.cache_size=1", "task.warmup_updates=1", "dataset.max_tokens=100000")
    # pl_cer: the unlabeled split kept LibriSpeech's transcripts as oracle labels
    assert re.search(r"pl_cer=\d", slimipl.stdout + slimipl.stderr)
