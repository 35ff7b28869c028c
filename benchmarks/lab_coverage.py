"""When label-aware batching matters: pair coverage with and without LAB as the classes grow.

    python benchmarks/lab_coverage.py --data data/demo --alignments data/demo_units --split labeled \
        --classes 100 300 1000 3000 --min-frames 20
    python benchmarks/lab_coverage.py --data data/lowres --labels exp/lowres/labeled_10min/frame_pl_s1 \
        --split unlabeled --max-tokens 640000 2560000 10240000

The labels are either those a frame teacher is trained to give (--alignments: the aligned units
of --split, data_prep.align's {split}.ali, tied into N classes by data_prep.units for each N of
--classes, plus the untied letters that CTC pseudo-labels hold), or the labels a teacher gave
(--labels: data_prep.pseudo_labels' {split}.plab, what CSL trains on).  For each, and each batch
size of --max-tokens: the share of batch labels held by at least two utterances of the batch
(``pair_coverage``, what CSL needs for a positive) with fairseq's length-ordered batches
(``batch_by_size``, LAB off) and with label-aware batches (LAB on), averaged over --epochs
epochs of batches; and, for comparison, the share of (utterance, label) pairs whose label another
utterance of the split holds too (a label no other utterance holds can never be paired).
"""
import argparse
from pathlib import Path

import numpy as np

from data_prep.align import parse_ali, unit_statistics
from data_prep.units import TiedUnits, contexts, tie_units
from sslasr_plugin.data.label_aware_batching import LabelSets, label_aware_batches, pair_coverage


def length_ordered_batches(sizes: np.ndarray, max_tokens: int, seed: int):
    """fairseq's batching without LAB: shuffle, stable sort by length, fill up to max_tokens."""
    from fairseq.data import data_utils

    order = np.random.default_rng(seed).permutation(len(sizes))
    order = order[np.argsort(sizes[order], kind="stable")]
    return [list(b) for b in data_utils.batch_by_size(order, lambda i: sizes[i], max_tokens=max_tokens)]


def label_statistics(utt_labels):
    """The label sets of the split, distinct labels per utterance, and the share of (utterance,
    label) pairs another utterance of the split shares."""
    sets = LabelSets(utt_labels)
    holders = np.bincount(sets.pair_rank.astype(np.int64))  # utterances holding each label
    pairable = np.mean(holders[sets.pair_rank.astype(np.int64)] >= 2)
    return sets, np.mean([len(np.unique(lab)) for lab in utt_labels]), pairable


def coverage(sets, sizes, max_tokens: int, epochs: int, buckets: int = 1):
    """Pair coverage and utterances per batch, LAB off and on."""
    off = [length_ordered_batches(sizes, max_tokens, e) for e in range(epochs)]
    on = [label_aware_batches(sets, sizes, max_tokens, seed=1, epoch=e, buckets=buckets) for e in range(1, epochs + 1)]
    per_batch = [np.mean([len(b) for epoch in batches for b in epoch]) for batches in (off, on)]
    return np.mean([pair_coverage(b, sets) for b in off]), np.mean([pair_coverage(b, sets) for b in on]), per_batch

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="corpus directory ({split}.tsv)")
    labels = parser.add_mutually_exclusive_group(required=True)
    labels.add_argument("--alignments", help="an output directory of data_prep.align")
    labels.add_argument("--labels", help="an output directory of data_prep.pseudo_labels ({split}.plab)")
    parser.add_argument("--split", default="labeled")
    parser.add_argument("--classes", type=int, nargs="+", default=[100, 300, 1000, 3000])
    parser.add_argument("--min-frames", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, nargs="+", default=[640000],
                        help="samples per batch (examples/csl/csl.yaml: 640000), one row each")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--buckets", type=int, default=1,
                        help="LAB within N length buckets (task.label_aware_buckets; csl.yaml: 1)")
    args = parser.parse_args()
    rows = alignment_labels(args) if args.alignments else teacher_labels(args)
    sizes = np.array([int(row.split("\t")[1]) for row in
                      (Path(args.data) / f"{args.split}.tsv").read_text().splitlines()[1:]])
    if any(len(utt_labels) != len(sizes) for _, utt_labels, _ in rows):
        raise SystemExit(f"error: {args.alignments or args.labels} labels {len(rows[0][1])} utterances of "
                         f"{args.split}, {args.data}/{args.split}.tsv lists {len(sizes)}: label the whole split")
    print(f"{args.split}: {len(sizes)} utterances, {sum(len(lab) for lab in rows[0][1])} frames")
    print("| labels | classes | batch (s of audio) | distinct labels per utterance | held by >= 2 utterances of "
          f"the split | pair coverage, LAB off | pair coverage, LAB on ({args.buckets} bucket(s)) | "
          "utterances per batch, LAB off / on |")
    print("|---|---|---|---|---|---|---|---|")
    for name, utt_labels, count in rows:
        sets, distinct, pairable = label_statistics(utt_labels)
        for max_tokens in args.max_tokens:
            off, on, per_batch = coverage(sets, sizes, max_tokens, args.epochs, args.buckets)
            print(f"| {name} | {count} | {max_tokens / 16000:.0f} | {distinct:.1f} | {pairable:.3f} | {off:.3f} | "
                  f"{on:.3f} | {per_batch[0]:.1f} / {per_batch[1]:.1f} |")


def alignment_labels(args):
    """(name, per-utterance class ids, class count): the untied letters, then each tying of --classes."""
    lines = (Path(args.alignments) / f"{args.split}.ali").read_text().splitlines()
    alis = [parse_ali(line, f"{args.split}.ali:{n + 1}") for n, line in enumerate(lines)]
    units = [contexts(tokens) for _, tokens, _ in alis]
    stats = unit_statistics(args.data, args.split, lines)
    letters = sorted({u[0] for utt in units for u in utt})
    rows = [("letters (untied)", [np.array([letters.index(u[0]) for u in utt]) for utt in units], len(letters))]
    for n in args.classes:
        tied = TiedUnits(tie_units(stats, n, args.min_frames))
        names = sorted(set(tied.names.values()))
        rows.append((f"tied, N = {n}", [np.array([names.index(tied(u)) for u in utt]) for utt in units], len(names)))
    return rows


def teacher_labels(args):
    """One row: the frame labels of --labels' {split}.plab, classes numbered by its dict.plab.txt."""
    root = Path(args.labels)
    index = {line.split()[0]: i for i, line in enumerate((root / "dict.plab.txt").read_text().splitlines())}
    utt_labels = []
    for n, line in enumerate((root / f"{args.split}.plab").read_text().splitlines()):
        try:
            utt_labels.append(np.array([index[label] for label in line.split()], dtype=np.int64))
        except KeyError as err:
            raise SystemExit(f"error: {root / args.split}.plab line {n + 1}: label {err} is not in "
                             f"{root}/dict.plab.txt (labels and dictionary of different runs?)") from None
    return [(f"teacher labels ({root.name})", utt_labels, len(index))]

if __name__ == "__main__":
    main()
