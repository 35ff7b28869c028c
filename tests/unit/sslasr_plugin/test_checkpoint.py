"""sslasr_plugin.checkpoint: the safe loader and the atomic copy."""
from pathlib import Path

import pytest
import torch

from sslasr_plugin.checkpoint import IncompleteCheckpointError, UnsafeCheckpointError, load_checkpoint
from tests.helpers import RunsShellCommand


def test_malicious_pickle_refused_by_plugin_and_fairseq_loaders(malicious_checkpoint):
    from fairseq import checkpoint_utils

    path, marker = malicious_checkpoint
    for loader in (load_checkpoint, checkpoint_utils.load_checkpoint_to_cpu):
        with pytest.raises(UnsafeCheckpointError, match="refused to load .*evil checkpoint.pt.*system"):
            loader(str(path))
    assert not marker.exists()


def test_old_fairseq_checkpoint_with_namespace_args_loads(tmp_path):
    import argparse

    path = tmp_path / "old.pt"
    torch.save({"args": argparse.Namespace(arch="wav2vec2", lr=[0.1]), "model": {"w": torch.ones(2)}}, path)
    state = load_checkpoint(str(path))
    assert state["args"].arch == "wav2vec2" and torch.equal(state["model"]["w"], torch.ones(2))


# ------------------------------------------------------------------ interrupted writes


@pytest.mark.parametrize("content", [b"", b"\x80", b"abc", b"\x80\x02}q\x00(X\x01", bytes(range(50))],
                         ids=["empty", "1 byte", "3 bytes", "cut pickle", "50 bytes"])
def test_empty_or_garbage_file_is_called_incomplete_not_unsafe(tmp_path, content):
    path = tmp_path / "checkpoint_last.pt"
    path.write_bytes(content)
    (tmp_path / "checkpoint_1_2.pt").write_bytes(b"")
    from fairseq import checkpoint_utils

    for loader in (load_checkpoint, checkpoint_utils.load_checkpoint_to_cpu):
        with pytest.raises(IncompleteCheckpointError, match=r"checkpoint_last.pt is not a complete checkpoint .*"
                                                            r"newest first: .*checkpoint_1_2.pt"):
            loader(str(path))


def test_malicious_legacy_format_pickle_is_refused_as_unsafe(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "legacy.pt"
    torch.save({"model": {}, "payload": RunsShellCommand(marker)}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(UnsafeCheckpointError, match="refused to load .*legacy.pt.*system"):
        load_checkpoint(str(path))
    assert not marker.exists()


def test_failed_atomic_copy_leaves_the_old_file_and_no_tmp(tmp_path, monkeypatch):
    from sslasr_plugin import checkpoint

    src, dst = tmp_path / "checkpoint_3.pt", tmp_path / "checkpoint_last.pt"
    src.write_bytes(b"new" * 1000)
    dst.write_bytes(b"old")

    def disk_full(a, b):
        Path(b).write_bytes(b"ne")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint.shutil, "copyfile", disk_full)
    with pytest.raises(OSError, match="No space left"):
        checkpoint.atomic_copy(str(src), str(dst), overwrite=True)
    assert dst.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == [src.name, dst.name]
