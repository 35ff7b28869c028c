"""Step time of joint CPC + CTC updates against stock fairseq updates of the same model.

Four fairseq Trainers in one process (``inprocess.py``), on the same data and model (6-layer,
256-dim, log-mel front end, same masking): stock CTC (``sslasr_audio_ctc`` + fairseq's ``ctc``
criterion + ``adam``, clip 5) against the joint task's CTC updates (``sslasr_joint`` +
``sslasr_joint_cpc_ctc`` + ``sslasr_dual_adam``), and stock wav2vec 2.0 pre-training
(``audio_pretraining`` + ``wav2vec`` criterion + ``adam``, clip 25) against the joint task's
contrastive updates.  Every arm steps the same batches of ``labeled`` (spread over its lengths),
taking turns batch by batch.  Prints ms per update (median), the ratio of total times joint /
stock and the median of the per-batch ratios; issue 4's target is a ratio <= 1.05.

    python benchmarks/joint_step.py --data data/demo --batches 40
"""
import argparse
from pathlib import Path

from inprocess import build_trainer, quiet, rows_to_sample, spread, stderr, summary, time_steps

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
    parser.add_argument("--batches", type=int, default=40, help="batches per arm, spread over the split's lengths")
    args = parser.parse_args()
    data = str(Path(args.data).resolve())
    quiet()
    from sslasr_plugin.batch_modes import SUP, UNSUP

    trainers, collate, batches = {}, {}, {}
    for arm, spec in ARMS.items():
        trainers[arm], dataset = build_trainer(spec, data)
        mode = {"joint_ctc": SUP, "joint_w2v": UNSUP}.get(arm)
        collate[arm] = rows_to_sample(dataset, mode)
        if arm.startswith("stock"):  # the stock arm's own batching of labeled, for both arms of the pair
            batches[arm] = spread(trainers[arm].get_train_iterator(epoch=1, load_dataset=False).frozen_batches,
                                  args.batches)
    for joint, stock in PAIRS:
        batches[joint] = batches[stock]
        joint_ds, stock_ds = trainers[joint].task.dataset("labeled"), trainers[stock].task.dataset("labeled")
        stream = joint_ds.streams[SUP if joint == "joint_ctc" else UNSUP]
        assert list(stream.sizes) == list(stock_ds.sizes), f"{joint} and {stock} index different utterances"
    n = min(len(b) for b in batches.values())
    stderr(f"{n} batches of labeled per arm (of {len(trainers['stock_ctc'].get_train_iterator(1, load_dataset=False).frozen_batches)})")
    seconds = time_steps(trainers, {arm: (lambda i, arm=arm: collate[arm](batches[arm][i])) for arm in ARMS}, n,
                         log=stderr)
    print("| pair | joint ms/update | stock ms/update | joint / stock (totals) | median per-batch ratio |")
    print("|---|---|---|---|---|")
    for joint, stock in PAIRS:
        rows = {arm: row for arm, *row in summary({joint: seconds[joint], stock: seconds[stock]}, stock)}
        print(f"| {joint} vs {stock} | {rows[joint][0]:.0f} | {rows[stock][0]:.0f} | {rows[joint][1]:.3f} | "
              f"{rows[joint][2]:.3f} |")


if __name__ == "__main__":
    main()
