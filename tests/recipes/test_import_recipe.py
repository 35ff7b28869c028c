"""An imported corpus trains and decodes: LibriSpeech-shaped tree from the tiny corpus ->
python -m data_prep.importers.librispeech -> data_prep.check -> fairseq-hydra-train (3 updates) ->
fairseq-generate."""
import re
import sys

import pytest
from conftest import generate, hydra_train, run_cli
from importer_trees import tiny_utterances, write_librispeech


@pytest.mark.slow
def test_librispeech_import_trains_and_decodes(tiny_corpus, tmp_path):
    ls = tmp_path / "LibriSpeech"
    for subset, split in (("train-clean-100", "labeled"), ("dev-clean", "valid"), ("test-clean", "test")):
        write_librispeech(ls / subset, tiny_utterances(tiny_corpus, split))
    data = tmp_path / "data"
    run_cli([sys.executable, "-m", "data_prep.importers.librispeech", "--root", ls, "--out", data, "--no-progress",
             "--splits", "labeled=train-clean-100", "valid=dev-clean", "test=test-clean"])
    check = run_cli([sys.executable, "-m", "data_prep.check", "--data", data, "--labels", "ltr"])
    assert "labeled: 24 rows, 0 problem(s)" in check.stdout
    save_dir = tmp_path / "exp"
    hydra_train("examples/ctc", "scratch_fbank", data, save_dir)
    assert (save_dir / "checkpoint_best.pt").is_file()
    proc = generate(data, save_dir / "checkpoint_best.pt", "test")
    assert re.search(r"Generate test with beam=1: WER: \d+\.\d+", proc.stdout + proc.stderr)
