"""Step time of CSL and CE-PL pre-training against the stock CTC step of the same encoder,
and the cost of label-aware batching.

Four fairseq Trainers in one process (``inprocess.py``), same encoder (6-layer, 256-dim, log-mel
front end, same masking), stepping the same utterances of one split batch by batch in turn:
stock CTC (``sslasr_audio_ctc`` + fairseq's ``ctc`` criterion + ``adam``) on the split's
transcripts, and CE-PL (``sslasr_frame_labels`` + ``sslasr_ce_pl``) and CSL (``sslasr_csl``,
same-utterance and whole-batch negatives) on its frame pseudo-labels.  The batches are fairseq's
length-ordered ones of the stock arm.  Label-aware batching (LAB) changes which utterances
share a batch, not what a step computes; its own cost is building each epoch's batches, timed
here on the same labels and given per batch, and the padding of its batches (a random mix of
lengths pads to its longest member), given as the share of real audio in the batched samples.
Issue 3's target: the loss and the sampling add at most 5% to the step.

The split needs frame pseudo-labels next to its transcripts:

    python -m data_prep.pseudo_labels --teacher exp/demo_ctc/checkpoint_best.pt --data data/demo \\
        --splits labeled --out data/demo_pl_labeled
    python benchmarks/csl_step.py --data data/demo --label-dir data/demo_pl_labeled --batches 40
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from inprocess import build_trainer, quiet, spread, stderr, summary, time_steps


def arms(label_dir: str, split: str):
    # The CSL configs' task crops to 250k samples and drops utterances under 8k samples; the
    # stock CTC task does neither: the frame-label arms keep every utterance whole.
    frame = [f"task.label_dir={label_dir}", f"dataset.train_subset={split}", "task.max_sample_size=480000",
             "task.min_sample_size=0", "task.label_aware_batching=false"]
    return {
        # scratch_fbank also masks channels; the frame model does not
        "stock_ctc": ("examples/ctc", "scratch_fbank", ["++model.mask_channel_prob=0.0", f"dataset.train_subset={split}"]),
        "ce_pl": ("examples/csl", "ce_pl", frame),
        "csl": ("examples/csl", "csl", frame),
        "csl_batch_negatives": ("examples/csl", "csl", [*frame, "criterion.negatives=batch"]),
    }


def audio_share(batches, sizes) -> float:
    """Real samples / batched samples (each batch padded to its longest utterance)."""
    real = sum(int(sizes[b].sum()) for b in batches)
    return real / sum(int(sizes[b].max()) * len(b) for b in batches)


def lab_cost(dataset, max_tokens: int, epochs: int = 3):
    """(seconds to read the label sets once, seconds per batch to build an epoch, its batches),
    as the frame-label task does it."""
    from sslasr_plugin.data.label_aware_batching import LabelSets, label_aware_batches

    sizes = np.minimum(dataset.sizes, dataset.max_sample_size)
    t0 = time.perf_counter()
    sets = LabelSets([dataset.get_label(i, 0).numpy() for i in range(len(dataset))])
    t_sets = time.perf_counter() - t0
    per_batch = []
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        batches = label_aware_batches(sets, sizes, max_tokens, seed=1, epoch=epoch)
        per_batch.append((time.perf_counter() - t0) / len(batches))
    return t_sets, statistics.median(per_batch), batches


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/demo")
    parser.add_argument("--label-dir", default="data/demo_pl_labeled")
    parser.add_argument("--split", default="labeled")
    parser.add_argument("--batches", type=int, default=40, help="batches per arm, spread over the split's lengths")
    args = parser.parse_args()
    data, label_dir = str(Path(args.data).resolve()), str(Path(args.label_dir).resolve())
    if not Path(f"{label_dir}/{args.split}.plab").is_file():
        sys.exit(f"error: {label_dir}/{args.split}.plab is missing: make frame pseudo-labels of the split first, e.g.\n"
                 f"  python -m data_prep.pseudo_labels --teacher exp/demo_ctc/checkpoint_best.pt "
                 f"--data {args.data} --splits {args.split} --out {args.label_dir}")
    quiet()
    trainers, datasets = {}, {}
    for arm, spec in arms(label_dir, args.split).items():
        trainers[arm], datasets[arm] = build_trainer(spec, data)
        assert list(datasets[arm].sizes) == list(datasets["stock_ctc"].sizes), f"{arm} indexes other utterances"
    all_batches = trainers["stock_ctc"].get_train_iterator(epoch=1, load_dataset=False).frozen_batches
    batches = spread(all_batches, args.batches)
    stderr(f"{len(batches)} batches of {args.split} per arm (of {len(all_batches)})")

    def collate(arm):
        ds = datasets[arm]
        return lambda i: ds.collater([ds[int(j)] for j in batches[i]])

    seconds = time_steps(trainers, {arm: collate(arm) for arm in trainers}, len(batches), log=stderr)
    stock = statistics.median(seconds["stock_ctc"])
    print("| arm | ms/update (median) | / stock CTC (totals) | median per-batch ratio |\n|---|---|---|---|")
    for arm, ms, total, per_batch in summary(seconds, "stock_ctc"):
        print(f"| {arm} | {ms:.0f} | {total:.3f} | {per_batch:.3f} |")

    frame_ds = datasets["csl"]
    max_tokens = trainers["csl"].cfg.dataset.max_tokens
    t_sets, per_batch, lab_batches = lab_cost(frame_ds, max_tokens)
    sizes = np.minimum(frame_ds.sizes, frame_ds.max_sample_size)
    print(f"\nLabel-aware batching of {args.split} ({len(frame_ds)} utterances, max_tokens {max_tokens}): "
          f"label sets {t_sets * 1e3:.1f} ms once per run; one epoch {per_batch * len(lab_batches) * 1e3:.1f} ms for "
          f"{len(lab_batches)} batches = {per_batch * 1e6:.0f} us per batch ({per_batch / stock * 100:.3f}% of the "
          f"stock CTC step). Real audio in the batched samples: {audio_share(lab_batches, sizes):.3f} with LAB, "
          f"{audio_share(all_batches, sizes):.3f} in fairseq's length-ordered batches ({len(all_batches)} batches).")


if __name__ == "__main__":
    main()
