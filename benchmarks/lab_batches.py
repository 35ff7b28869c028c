"""Data side of CSL: time to build one epoch of label-aware batches for N utterances.

    python benchmarks/lab_batches.py --utterances 1000000

Synthetic label statistics shaped like CSL's letter pseudo-labels: each utterance lasts
2-15 s (uniform), speaks 12 letters a second drawn with English letter frequencies plus the word
separator, and so holds most frequent letters and rarely Q, Z, X or J; LAB only looks at the set
of labels per utterance.  Prints the seconds to build the label sets (once per run) and each
epoch's batches, utterances per second, the number of batches and the share of batch labels
held at least twice, next to fairseq's own length-ordered batching
(``data_utils.batch_by_size``) of the same sizes.
"""
import argparse
import resource
import time

import numpy as np

from sslasr_plugin.data.label_aware_batching import LabelSets, label_aware_batches, pair_coverage

# English letter frequencies (%), A..Z, and the word separator.
LETTERS = np.array([8.2, 1.5, 2.8, 4.3, 12.7, 2.2, 2.0, 6.1, 7.0, 0.15, 0.77, 4.0, 2.4, 6.7, 7.5, 1.9, 0.095,
                    6.0, 6.3, 9.1, 2.8, 0.98, 2.4, 0.15, 2.0, 0.074, 18.0])


def synthetic_labels(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    seconds = rng.uniform(2, 15, n)
    probs = LETTERS / LETTERS.sum()
    # The distinct letters of a 12-letters-per-second utterance: letter k is present with
    # probability 1 - (1 - p_k)^(12 s).
    present = rng.random((n, len(probs))) < 1 - (1 - probs[None, :]) ** (12 * seconds[:, None])
    labels = [np.flatnonzero(row) for row in present]
    return labels, (seconds * 16000).astype(np.int64)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--utterances", type=int, default=1_000_000)
    parser.add_argument("--max-tokens", type=int, default=1_400_000, help="samples per batch (fairseq's unit)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=2, help="epochs to build (each one is timed)")
    args = parser.parse_args()

    t0 = time.perf_counter()
    labels, sizes = synthetic_labels(args.utterances)
    made = time.perf_counter() - t0
    print(f"{args.utterances:,} utterances, {sizes.sum() / 16000 / 3600:,.0f} h, "
          f"{np.mean([len(l) for l in labels]):.1f} distinct labels each (synthetic statistics: {made:.1f} s)")

    t0 = time.perf_counter()
    sets = LabelSets(labels)
    index = time.perf_counter() - t0
    print(f"label sets (once per run, as the task caches them): {index:.1f} s")
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        batches = label_aware_batches(sets, sizes, args.max_tokens, args.seed, epoch=epoch)
        lab = time.perf_counter() - t0
        used = sum(len(b) for b in batches)
        print(f"label-aware batching, epoch {epoch}: {lab:.1f} s ({args.utterances / lab:,.0f} utterances/s), "
              f"{len(batches):,} batches, {used:,} utterances used, pair coverage {pair_coverage(batches, sets):.4f}")

    from fairseq.data import data_utils

    t0 = time.perf_counter()
    order = np.argsort(sizes, kind="stable")
    stock = data_utils.batch_by_size(order, lambda i: sizes[i], max_tokens=args.max_tokens)
    ref = time.perf_counter() - t0
    print(f"fairseq batch_by_size (length order, no labels): {ref:.1f} s, {len(stock):,} batches; "
          f"label-aware / stock time: {lab / max(ref, 1e-9):.1f}x")
    print(f"peak memory of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.1f} GB")


if __name__ == "__main__":
    main()
