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
lengths pads to its longest member), given as the share of real audio in the batched samples,
for the paper's LAB and for LAB within length buckets (``task.label_aware_buckets``).
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

from inprocess import build_trainer, quiet, rows_to_sample, spread, stderr, summary, time_steps


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


def lab_rows(task, dataset, max_tokens: int, fairseq_batches, step: float, buckets=(1, 4, 8, 16), epochs: int = 3):
    """Markdown rows: for each number of length buckets, LAB's batches per epoch, seconds per
    batch to build them (as the frame-label task does), pair coverage and real-audio share; and
    fairseq's length-ordered batches for comparison."""
    from sslasr_plugin.data.label_aware_batching import audio_share, label_aware_batches, pair_coverage

    sizes = np.minimum(dataset.sizes, dataset.max_sample_size)
    t0 = time.perf_counter()
    sets = task.utterance_labels(dataset)  # the frame-label task's own reading (once per run)
    stderr(f"label sets of {len(sets)} utterances: {(time.perf_counter() - t0) * 1e3:.1f} ms (once per run)")
    rows = []
    for k in buckets:
        per_batch = []
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            batches = label_aware_batches(sets, sizes, max_tokens, seed=1, epoch=epoch, buckets=k)
            per_batch.append((time.perf_counter() - t0) / len(batches))
        t = statistics.median(per_batch)
        rows.append(f"| LAB, {k} length bucket{'s' if k > 1 else ''} | {len(batches)} | {t * 1e6:.0f} us "
                    f"({t / step * 100:.3f}% of a step) | {pair_coverage(batches, sets):.3f} | "
                    f"{audio_share(batches, sizes):.3f} |")
    rows.append(f"| fairseq length-ordered | {len(fairseq_batches)} | - | {pair_coverage(fairseq_batches, sets):.3f} | "
                f"{audio_share(fairseq_batches, sizes):.3f} |")
    return rows


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

    collate = {arm: rows_to_sample(datasets[arm]) for arm in trainers}
    seconds = time_steps(trainers, {arm: (lambda i, arm=arm: collate[arm](batches[i])) for arm in trainers},
                         len(batches), log=stderr)
    stock = statistics.median(seconds["stock_ctc"])
    print("| arm | ms/update (median) | / stock CTC (totals) | median per-batch ratio |\n|---|---|---|---|")
    for arm, ms, total, per_batch in summary(seconds, "stock_ctc"):
        print(f"| {arm} | {ms:.0f} | {total:.3f} | {per_batch:.3f} |")

    frame_ds = datasets["csl"]
    max_tokens = trainers["csl"].cfg.dataset.max_tokens
    print(f"\nBatching {args.split} ({len(frame_ds)} utterances, max_tokens {max_tokens}), seed 1, epochs 1-3:\n")
    print("| batching | batches / epoch | building them, per batch | pair coverage | audio / batched samples |")
    print("|---|---|---|---|---|")
    print("\n".join(lab_rows(trainers["csl"].task, frame_ds, max_tokens, [list(b) for b in all_batches], stock)))


if __name__ == "__main__":
    main()
