"""The data check stops a real training run before its first update."""
import pytest

from tests.helpers import hydra_train

pytestmark = pytest.mark.slow


def test_training_stops_before_any_update_with_a_clear_message(corpus_copy, tmp_path):
    ltr = corpus_copy / "labeled.ltr"
    ltr.write_text(ltr.read_text() + "E X T R A |\n")
    proc = hydra_train("examples/ctc", "scratch_fbank", corpus_copy, tmp_path / "exp", check=False)
    assert proc.returncode != 0
    assert "labeled.ltr has 25 lines but labeled.tsv lists 24 files" in proc.stdout + proc.stderr
    assert not (tmp_path / "exp" / "checkpoint_last.pt").exists()
