"""When label-aware batching matters: pair coverage with and without LAB as the classes grow.

    python benchmarks/lab_coverage.py --data data/demo --alignments data/demo_units --split labeled \
        --classes 100 300 1000 3000 --min-frames 20

The labels are those a frame teacher is trained to give: the aligned units of --split
(data_prep.align's {split}.ali) tied into N classes (data_prep.units) for each N of --classes,
plus the untied letters (what the CTC pseudo-labels hold).  For each: the share of batch
labels held by at least two utterances of the batch (``pair_coverage``, what CSL needs for a
positive) with fairseq's length-ordered batches (``batch_by_size``, LAB off) and with
label-aware batches (LAB on), at CSL's --max-tokens, averaged over --epochs epochs of batches;
and its ceiling, the share of (utterance, label) pairs whose label another utterance of the
split holds too (a label no other utterance holds can never be paired).
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


def coverage(utt_labels, sizes, max_tokens: int, epochs: int):
    sets = LabelSets(utt_labels)
    off = np.mean([pair_coverage(length_ordered_batches(sizes, max_tokens, e), sets) for e in range(epochs)])
    on = np.mean([pair_coverage(label_aware_batches(sets, sizes, max_tokens, 1, epoch=e), sets)
                  for e in range(1, epochs + 1)])
    holders = np.bincount(sets.pair_rank.astype(np.int64))  # utterances holding each label
    pairable = np.mean(holders[sets.pair_rank.astype(np.int64)] >= 2)
    return off, on, np.mean([len(np.unique(lab)) for lab in utt_labels]), pairable


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="corpus directory ({split}.tsv)")
    parser.add_argument("--alignments", required=True, help="an output directory of data_prep.align")
    parser.add_argument("--split", default="labeled")
    parser.add_argument("--classes", type=int, nargs="+", default=[100, 300, 1000, 3000])
    parser.add_argument("--min-frames", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=640000, help="samples per batch (examples/csl/csl.yaml)")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    lines = (Path(args.alignments) / f"{args.split}.ali").read_text().splitlines()
    alis = [parse_ali(line, f"{args.split}.ali:{n + 1}") for n, line in enumerate(lines)]
    sizes = np.array([int(row.split("\t")[1]) for row in
                      (Path(args.data) / f"{args.split}.tsv").read_text().splitlines()[1:]])[:len(alis)]
    units = [contexts(tokens) for _, tokens, _ in alis]
    stats = unit_statistics(args.data, args.split, lines)
    print(f"{args.split}: {len(alis)} utterances, {sum(f for f, _, _ in alis)} frames, max_tokens {args.max_tokens}")
    print("| labels | classes | distinct labels per utterance | held by >= 2 utterances of the split | "
          "pair coverage, LAB off | pair coverage, LAB on |")
    print("|---|---|---|---|---|---|")
    letters = sorted({u[0] for utt in units for u in utt})
    rows = [("letters (untied)", [np.array([letters.index(u[0]) for u in utt]) for utt in units], len(letters))]
    for n in args.classes:
        tied = TiedUnits(tie_units(stats, n, args.min_frames))
        names = sorted(set(tied.names.values()))
        rows.append((f"tied, N = {n}", [np.array([names.index(tied(u)) for u in utt]) for utt in units], len(names)))
    for name, utt_labels, count in rows:
        off, on, distinct, pairable = coverage(utt_labels, sizes, args.max_tokens, args.epochs)
        print(f"| {name} | {count} | {distinct:.1f} | {pairable:.3f} | {off:.3f} | {on:.3f} |")


if __name__ == "__main__":
    main()
