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
import statistics
import sys
from pathlib import Path

from runs import batches_per_pass, seconds_per_update

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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/demo")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    data = str(Path(args.data).resolve())
    updates = batches_per_pass(data, ARMS["stock_ctc"])
    print(f"{updates} updates per run (one pass over labeled)", file=sys.stderr)
    runs = {arm: [] for arm in ARMS}
    for _ in range(args.repeats):
        for arm in ARMS:
            runs[arm].append(seconds_per_update(ARMS[arm], data, updates))
            print(f"{arm}: {runs[arm][-1]:.3f} s/update", file=sys.stderr)
    print(f"| pair | joint s/update | stock s/update | joint / stock |\n|---|---|---|---|")
    for joint, stock in PAIRS:
        j, s = statistics.median(runs[joint]), statistics.median(runs[stock])
        print(f"| {joint} vs {stock} | {j:.3f} | {s:.3f} | {j / s:.3f} |")


if __name__ == "__main__":
    main()
