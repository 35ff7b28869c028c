import os

import pytest
import torch

from conftest import generate
from sslasr_plugin.checkpoint import SAFE_GLOBALS, UnsafeCheckpointError, load_checkpoint


class _RunsShellCommand:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def malicious_checkpoint(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil checkpoint.pt"  # a space in the name on purpose
    torch.save({"model": {}, "args": None, "payload": _RunsShellCommand(marker)}, path)
    return path, marker


def test_trained_checkpoint_holds_only_allow_listed_classes(ctc_checkpoint):
    allowed = {f"{c.__module__}.{c.__qualname__}" for c in SAFE_GLOBALS}
    assert set(torch.serialization.get_unsafe_globals_in_checkpoint(str(ctc_checkpoint))) <= allowed
    state = load_checkpoint(str(ctc_checkpoint))
    assert state["cfg"]["model"]["_name"] == "sslasr_ctc"
    assert any(k.endswith("proj.weight") for k in state["model"])


def test_malicious_pickle_refused_by_plugin_and_fairseq_loaders(malicious_checkpoint):
    from fairseq import checkpoint_utils

    path, marker = malicious_checkpoint
    for loader in (load_checkpoint, checkpoint_utils.load_checkpoint_to_cpu):
        with pytest.raises(UnsafeCheckpointError, match="refused to load .*evil checkpoint.pt.*system"):
            loader(str(path))
    assert not marker.exists()


def test_fairseq_generate_refuses_malicious_checkpoint(malicious_checkpoint, tiny_corpus):
    path, marker = malicious_checkpoint
    proc = generate(tiny_corpus, path, check=False)
    assert proc.returncode != 0
    assert "refused to load" in proc.stderr and "evil checkpoint.pt" in proc.stderr
    assert not marker.exists()


def test_old_fairseq_checkpoint_with_namespace_args_loads(tmp_path):
    import argparse

    path = tmp_path / "old.pt"
    torch.save({"args": argparse.Namespace(arch="wav2vec2", lr=[0.1]), "model": {"w": torch.ones(2)}}, path)
    state = load_checkpoint(str(path))
    assert state["args"].arch == "wav2vec2" and torch.equal(state["model"]["w"], torch.ones(2))
