"""Step time of joint CPC + CTC updates against stock fairseq updates of the same model.

fairseq-hydra-train runs on the same data, machine and model: stock CTC (fairseq's ``ctc``
criterion + ``adam``) against the joint task's CTC updates, and stock wav2vec 2.0 pre-training
(``audio_pretraining`` + ``wav2vec`` criterion + ``adam``) against the joint task's contrastive
updates.  Each run is one pass over the batches of ``labeled`` (the same batches for both arms
of a pair, in their own orders: per-batch cost varies with length, so shorter runs over
different batches would compare batches, not code).  Prints seconds per update (median over
``--repeats``, from the first to the last update's log line) and the ratio joint / stock;
issue 4's target is a ratio <= 1.05.

    python benchmarks/joint_step.py --data data/demo --repeats 1
"""
import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import List

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

# The joint config's model and masking, written onto the stock configs (++: set or add).
MODEL = ["++model.mask_length=10", "++model.mask_channel_prob=0.0"]
ARMS = {
    "stock_ctc": ("examples/ctc", "scratch_fbank", [*MODEL, "++model.mask_prob=0.25", "++optimization.clip_norm=5.0",
                                                    "++optimizer.adam_eps=1e-06"]),
    "joint_ctc": ("examples/joint", "joint", ["+variant=supervised_only"]),
    "stock_w2v": ("examples/wav2vec2", "pretrain_fbank", [
        *MODEL, "++model.mask_prob=0.65", "++model.quantize_targets=false", "++model.final_dim=128",
        "++model.num_negatives=100", "++model.logit_temp=0.1", "++model.dropout_input=0.0",
        "++criterion.loss_weights=[0.0]", "++criterion.log_keys=[]", "++task.max_sample_size=480000",
        "~task.min_sample_size", "++optimization.clip_norm=25.0", "dataset.train_subset=labeled"]),
    "joint_w2v": ("examples/joint", "joint", ["task.pretrain_updates=100000", "task.unlabeled_subsets=''"]),
}
PAIRS = (("joint_ctc", "stock_ctc"), ("joint_w2v", "stock_w2v"))
STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]\[train_inner\].*num_updates=(\d+)")
EPOCH = re.compile(r"\[train_inner\].*epoch 001: +\d+ / (\d+) ")


def train_log(arm: str, data: str, updates: int) -> List[str]:
    """stdout lines of a fairseq-hydra-train run of ``arm`` for ``updates`` updates."""
    config_dir, name, overrides = ARMS[arm]
    with tempfile.TemporaryDirectory() as save_dir:
        args = [BIN / "fairseq-hydra-train", "--config-dir", config_dir, "--config-name", name,
                "common.user_dir=sslasr_plugin", f"task.data={data}", f"checkpoint.save_dir={save_dir}",
                f"hydra.run.dir={save_dir}/hydra", f"optimization.max_update={updates}", "common.log_interval=1",
                "checkpoint.no_save=true", "dataset.disable_validation=true", *overrides]
        proc = subprocess.run([str(a) for a in args], cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{arm} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout.splitlines()


def seconds_per_update(arm: str, data: str, updates: int) -> float:
    times = {int(m.group(2)): datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f")
             for m in map(STAMP.match, train_log(arm, data, updates)) if m}
    return (times[updates] - times[1]).total_seconds() / (updates - 1)


def batches_per_pass(data: str) -> int:
    """Batches in one pass over `labeled` (the stock CTC run's epoch length, read from its log;
    2 updates: fairseq's tri_stage scheduler refuses 1)."""
    return next(int(m.group(1)) for m in map(EPOCH.search, train_log("stock_ctc", data, 2)) if m)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/demo")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    data = str(Path(args.data).resolve())
    updates = batches_per_pass(data)
    print(f"{updates} updates per run (one pass over labeled)", file=sys.stderr)
    runs = {arm: [] for arm in ARMS}
    for _ in range(args.repeats):
        for arm in ARMS:
            runs[arm].append(seconds_per_update(arm, data, updates))
            print(f"{arm}: {runs[arm][-1]:.3f} s/update", file=sys.stderr)
    print(f"| pair | joint s/update | stock s/update | joint / stock |\n|---|---|---|---|")
    for joint, stock in PAIRS:
        j, s = statistics.median(runs[joint]), statistics.median(runs[stock])
        print(f"| {joint} vs {stock} | {j:.3f} | {s:.3f} | {j / s:.3f} |")


if __name__ == "__main__":
    main()
