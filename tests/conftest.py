"""Shared fixtures: the tiny synthetic corpus (built once per session), a trained CTC checkpoint,
a checkpoint whose pickle runs a shell command."""
import shutil

import pytest
import torch

from tests.helpers import RunsShellCommand, hydra_train


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    from data_prep.corpus import build_corpus

    return build_corpus(str(tmp_path_factory.mktemp("corpus") / "tiny"), preset="tiny", progress=False)


@pytest.fixture(scope="session")
def ctc_checkpoint(tiny_corpus, tmp_path_factory):
    """checkpoint_best.pt of a 3-update scratch_fbank run on the tiny corpus."""
    save_dir = tmp_path_factory.mktemp("ctc")
    hydra_train("examples/ctc", "scratch_fbank", tiny_corpus, save_dir)
    return save_dir / "checkpoint_best.pt"


@pytest.fixture
def corpus_copy(tiny_corpus, tmp_path):
    """A private copy of the tiny corpus (manifests rewritten to point at the copy)."""
    dst = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, dst)
    for tsv in dst.glob("*.tsv"):
        lines = tsv.read_text().splitlines()
        tsv.write_text("\n".join([str(dst)] + lines[1:]) + "\n")
    return dst


@pytest.fixture
def malicious_checkpoint(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil checkpoint.pt"  # a space in the name on purpose
    torch.save({"model": {}, "args": None, "payload": RunsShellCommand(marker)}, path)
    return path, marker
