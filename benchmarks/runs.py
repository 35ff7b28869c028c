"""Shared by the step-time benchmarks: timed fairseq-hydra-train runs of named arms.

An arm is (config dir, config name, overrides).  A run logs every update; seconds per update
are read from the log's timestamps between the first and the last update (so start-up,
data loading before the first update and the end-of-run save are not counted).
"""
import re
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import List, Sequence, Tuple

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
Arm = Tuple[str, str, Sequence[str]]

STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]\[train_inner\].*num_updates=(\d+)")
EPOCH = re.compile(r"\[train_inner\].*epoch 001: +\d+ / (\d+) ")
# The stock CTC run every benchmark compares against: fairseq's ctc criterion and adam.
STOCK_CTC: Arm = ("examples/ctc", "scratch_fbank", [])


def train_log(arm: Arm, data: str, updates: int) -> List[str]:
    """stdout lines of a fairseq-hydra-train run of ``arm`` for ``updates`` updates."""
    config_dir, name, overrides = arm
    with tempfile.TemporaryDirectory() as save_dir:
        args = [BIN / "fairseq-hydra-train", "--config-dir", config_dir, "--config-name", name,
                "common.user_dir=sslasr_plugin", f"task.data={data}", f"checkpoint.save_dir={save_dir}",
                f"hydra.run.dir={save_dir}/hydra", f"optimization.max_update={updates}", "common.log_interval=1",
                "checkpoint.no_save=true", "dataset.disable_validation=true", *overrides]
        proc = subprocess.run([str(a) for a in args], cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{config_dir}/{name} {' '.join(overrides)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout.splitlines()


def seconds_per_update(arm: Arm, data: str, updates: int) -> float:
    times = {int(m.group(2)): datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f")
             for m in map(STAMP.match, train_log(arm, data, updates)) if m}
    return (times[updates] - times[1]).total_seconds() / (updates - 1)


def batches_per_pass(data: str, arm: Arm = STOCK_CTC) -> int:
    """Batches in one pass over the arm's training split (its epoch length, read from its log;
    2 updates: fairseq's tri_stage scheduler refuses 1)."""
    return next(int(m.group(1)) for m in map(EPOCH.search, train_log(arm, data, 2)) if m)
