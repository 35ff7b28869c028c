"""Speed perturbation through the real command lines: CTC training with task.speed_perturb on
the tiny corpus, then decoding with fairseq-generate (never perturbed).  The frame-label run is
in test_csl_runs.py."""
import re

import pytest

from sslasr_plugin.checkpoint import load_checkpoint
from tests.helpers import generate, hydra_train

pytestmark = pytest.mark.slow


def test_ctc_training_with_speed_perturbation(tiny_corpus, tmp_path):
    proc = hydra_train("examples/ctc", "scratch_fbank", tiny_corpus, tmp_path, "task.speed_perturb=[0.9,1.0,1.1]")
    log = proc.stdout + proc.stderr
    drawn = {int(e): list(map(int, n)) for e, *n in re.findall(
        r"speed perturbation, epoch (\d+): utterances per factor 0.9: (\d+), 1: (\d+), 1.1: (\d+)", log)}
    assert 1 in drawn and all(sum(n) == 24 for n in drawn.values()), log[-3000:]  # the tiny labeled split
    ckpt = load_checkpoint(tmp_path / "checkpoint_last.pt")
    assert ckpt["cfg"]["task"]["speed_perturb"] == [0.9, 1.0, 1.1]
    assert ckpt["optimizer_history"][-1]["num_updates"] == 3
    out = generate(tiny_corpus, tmp_path / "checkpoint_last.pt", "test")
    assert "Generate test with beam=1: WER:" in out.stdout + out.stderr
