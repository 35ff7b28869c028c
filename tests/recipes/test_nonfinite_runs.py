"""A real training run over an utterance of NaN samples."""
import re

import pytest
import torch

from sslasr_plugin.checkpoint import load_checkpoint
from tests.helpers import hydra_train, nan_wav

pytestmark = pytest.mark.slow


def test_training_run_survives_nan_audio_and_names_the_file(corpus_copy, tmp_path):
    """One epoch, one utterance per batch: the NaN utterance's update is skipped and reported,
    every other update is taken, and the checkpoint holds finite weights."""
    rel = nan_wav(corpus_copy)
    run = hydra_train("examples/ctc", "scratch_fbank", corpus_copy, tmp_path / "exp", "dataset.batch_size=1",
                      "optimization.max_epoch=1", "optimization.max_update=1000", "checkpoint.save_interval_updates=0",
                      "checkpoint.save_interval=1", "dataset.validate_interval=1",
                      "dataset.validate_interval_updates=0", allow_nonfinite=True)
    log = run.stdout + run.stderr
    # NaN loss, or (the NaN frames under wav2vec 2.0's time mask) a finite loss over NaN input
    bad = r"(non-finite loss \(nan\)|NaN or Inf in the batch's input \(loss [^)]*\))"
    assert re.search(rf"update \d+: {bad} on a batch of 1 utterances \({re.escape(rel)}\)", log)
    assert len(re.findall(r"update \d+ skipped: every batch was non-finite", log)) == 1
    assert re.search(r"nonfinite=1\b", log) and "FloatingPointError" not in log and "crash.pt" not in log
    batches = int(re.search(r"total_num_itrs = (\d+)", log).group(1))
    state = load_checkpoint(tmp_path / "exp" / "checkpoint_last.pt")
    assert state["optimizer_history"][-1]["num_updates"] == batches
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
