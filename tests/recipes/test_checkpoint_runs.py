"""Checkpoints made, refused and resumed by the real fairseq-hydra-train and fairseq-generate."""
import os
import re
import shutil
import signal
import sys

import pytest
import torch

from sslasr_plugin.checkpoint import SAFE_GLOBALS, IncompleteCheckpointError, load_checkpoint
from tests.helpers import generate, hydra_train, run_cli

pytestmark = pytest.mark.slow


def test_trained_checkpoint_holds_only_allow_listed_classes(ctc_checkpoint):
    allowed = {f"{c.__module__}.{c.__qualname__}" for c in SAFE_GLOBALS}
    assert set(torch.serialization.get_unsafe_globals_in_checkpoint(str(ctc_checkpoint))) <= allowed
    state = load_checkpoint(str(ctc_checkpoint))
    assert state["cfg"]["model"]["_name"] == "sslasr_ctc"
    assert any(k.endswith("proj.weight") for k in state["model"])


def test_a_seed_reproduces_its_run(ctc_checkpoint, tiny_corpus, tmp_path):
    """The same 3-update run again, same common.seed: the same weights to the bit (the wav2vec 2.0
    masks follow the seed: sslasr_plugin.patches.seeded_masks; fairseq's come from OS entropy).
    Started a third time, it trains no more (sslasr_plugin.patches.no_update_past_max)."""
    hydra_train("examples/ctc", "scratch_fbank", tiny_corpus, tmp_path)
    again, first = load_checkpoint(tmp_path / "checkpoint_best.pt"), load_checkpoint(ctc_checkpoint)
    assert again["optimizer_history"][-1]["num_updates"] == first["optimizer_history"][-1]["num_updates"] == 3
    assert again["model"].keys() == first["model"].keys()
    assert all(torch.equal(again["model"][k], first["model"][k]) for k in first["model"])
    # Started again, the finished run makes no update past max_update (stock fairseq makes update 4
    # before it checks the cap, and may keep it as checkpoint_best).
    proc = hydra_train("examples/ctc", "scratch_fbank", tiny_corpus, tmp_path)
    assert "already at optimization.max_update=3: no further update" in proc.stdout + proc.stderr
    last = load_checkpoint(tmp_path / "checkpoint_last.pt")
    assert last["optimizer_history"][-1]["num_updates"] == 3
    assert all(torch.equal(last["model"][k], first["model"][k]) for k in first["model"])


def test_fairseq_generate_refuses_malicious_checkpoint(malicious_checkpoint, tiny_corpus):
    path, marker = malicious_checkpoint
    proc = generate(tiny_corpus, path, check=False)
    assert proc.returncode != 0
    assert "refused to load" in proc.stderr and "evil checkpoint.pt" in proc.stderr
    assert not marker.exists()


# fairseq-hydra-train, killed (SIGKILL, no clean-up) half-way through its copy of the update-4
# checkpoint (checkpoint_2_4.pt: the tiny corpus is 3 updates an epoch) to checkpoint_last.pt:
# the copy writes half the bytes, then the process dies.
_KILLED_DURING_COPY = """
import os, shutil, signal, sys
copyfile = shutil.copyfile
def dying_copyfile(src, dst, *args, **kwargs):
    if "checkpoint_2_4" in str(src) and os.path.basename(str(dst)).startswith("checkpoint_last"):
        data = open(src, "rb").read()
        open(dst, "wb").write(data[: len(data) // 2])
        os.kill(os.getpid(), signal.SIGKILL)
    return copyfile(src, dst, *args, **kwargs)
shutil.copyfile = dying_copyfile
from fairseq_cli.hydra_train import cli_main
sys.argv = ["fairseq-hydra-train", *sys.argv[1:]]
cli_main()
"""


def _train_args(corpus, save_dir, max_update, user_dir=True):
    return ["--config-dir", "examples/ctc", "--config-name", "scratch_fbank", f"task.data={corpus}",
            f"checkpoint.save_dir={save_dir}", f"hydra.run.dir={save_dir}/hydra", f"optimization.max_update={max_update}",
            "checkpoint.save_interval_updates=2", "checkpoint.keep_interval_updates=-1",
            "dataset.validate_interval_updates=2", "common.log_interval=1", "dataset.num_workers=0",
            *(["common.user_dir=sslasr_plugin"] if user_dir else [])]


def _updates(path):
    return load_checkpoint(str(path))["optimizer_history"][-1]["num_updates"]


def test_kill_while_copying_to_checkpoint_last_keeps_the_previous_one_whole(tiny_corpus, tmp_path):
    save = tmp_path / "with plugin"
    killed = run_cli([sys.executable, "-c", _KILLED_DURING_COPY, *_train_args(tiny_corpus, save, 4)], check=False)
    assert killed.returncode == -signal.SIGKILL
    assert _updates(save / "checkpoint_2_4.pt") == 4  # the new checkpoint was written (atomically, by fairseq)
    assert _updates(save / "checkpoint_last.pt") == 2  # the interrupted copy never became checkpoint_last.pt
    resumed = run_cli(["fairseq-hydra-train", *_train_args(tiny_corpus, save, 6)])
    assert "Loaded checkpoint" in resumed.stdout and "(epoch 1 @ 2 updates)" in resumed.stdout
    assert _updates(save / "checkpoint_last.pt") == 6
    assert not (save / "checkpoint_last.pt.tmp").exists()


def test_truncated_checkpoint_last_is_named_with_the_checkpoints_to_resume_from(tiny_corpus, tmp_path):
    """What fairseq's own in-place copy leaves after such a kill: resuming says so, no traceback hunt."""
    save = tmp_path / "exp"
    run_cli(["fairseq-hydra-train", *_train_args(tiny_corpus, save, 4)])
    data = (save / "checkpoint_2_4.pt").read_bytes()
    (save / "checkpoint_last.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(IncompleteCheckpointError, match="checkpoint_last.pt is not a complete checkpoint"):
        load_checkpoint(str(save / "checkpoint_last.pt"))
    resumed = run_cli(["fairseq-hydra-train", *_train_args(tiny_corpus, save, 6)], check=False)
    assert resumed.returncode != 0
    message = re.search(r"IncompleteCheckpointError: (.*)", resumed.stderr).group(1)
    assert f"{save / 'checkpoint_last.pt'} is not a complete checkpoint" in message
    others = re.search(r"newest first: (.*?)\. To resume", message).group(1).split(", ")
    assert sorted(others) == [str(save / f"checkpoint_{n}.pt") for n in ("1_2", "2_4", "best")]
    assert others[-1] == str(save / "checkpoint_1_2.pt")
    # The advice, followed as written, resumes at update 4 and keeps the broken file.
    advice = re.search(r"copy that one in its place: (.*)", message).group(1)
    assert advice == f"mv {save / 'checkpoint_last.pt'} {save / 'checkpoint_last.pt'}.incomplete && cp {others[0]} {save / 'checkpoint_last.pt'}"
    os.rename(save / "checkpoint_last.pt", save / "checkpoint_last.pt.incomplete")
    shutil.copyfile(others[0], save / "checkpoint_last.pt")
    resumed = run_cli(["fairseq-hydra-train", *_train_args(tiny_corpus, save, 6)])
    assert re.search(r"\(epoch \d+ @ 4 updates\)", resumed.stdout), resumed.stdout[-3000:]
    assert _updates(save / "checkpoint_last.pt") == 6
    assert (save / "checkpoint_last.pt.incomplete").read_bytes() == data[: len(data) // 2]
