"""The plugin as an absolute common.user_dir, launched from another directory."""
import pytest

from tests.helpers import REPO, hydra_train

pytestmark = pytest.mark.slow


def test_absolute_user_dir_from_anywhere(tiny_corpus, tmp_path):
    save_dir = tmp_path / "exp"
    hydra_train(str(REPO / "examples" / "ctc"), "scratch_fbank", tiny_corpus, save_dir,
                cwd=tmp_path, user_dir=str(REPO / "sslasr_plugin"))
    assert (save_dir / "checkpoint_last.pt").exists()
