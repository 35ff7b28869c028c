"""Step time of continuous pseudo-labeling (slimIPL, soft labels) against the stock CTC step.

fairseq-hydra-train runs on the same data, machine and model (examples/slimipl/slimipl.yaml's,
which is examples/ctc/scratch_fbank.yaml's): stock CTC (``ctc`` criterion + ``adam``) against
the ``sslasr_slimipl`` task's labeled updates, its pseudo-labeled updates while the cache
fills (every update labels its incoming batch: one extra forward pass, no gradient) and in
the steady state (a cache of 20 batches, replaced with p = 0.1: the update reloads a cached
batch from disk and labels one in ten), hard and soft.  The pseudo-labeling arms label the
labeled split's own audio, so every arm sees the same batches; each run is one pass over
them.  Prints seconds per update (median over ``--repeats``) and the ratio to stock CTC.

    python benchmarks/slimipl_step.py --data data/demo --repeats 1
"""
import argparse
import statistics
import sys
from pathlib import Path

from runs import STOCK_CTC, batches_per_pass, seconds_per_update

PL_ONLY = ["task.warmup_updates=0", "task.sup_updates=0", "task.unsup_updates=1", "task.unlabeled_subsets=''",
           "task.unsup_on_labeled=true", "task.oracle_labels=null"]
ARMS = {
    "stock_ctc": STOCK_CTC,
    "slimipl_labeled": ("examples/slimipl", "slimipl", ["+variant=supervised_only", "task.warmup_updates=0"]),
    "slimipl_filling": ("examples/slimipl", "slimipl", [*PL_ONLY, "task.cache_size=1000000"]),
    "slimipl_cached": ("examples/slimipl", "slimipl", [*PL_ONLY, "task.cache_size=20", "task.cache_replace_prob=0.1"]),
    "soft_cached": ("examples/slimipl", "slimipl", [*PL_ONLY, "task.cache_size=20", "task.cache_replace_prob=0.1",
                                                    "+variant=soft"]),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/demo")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    args = parser.parse_args()
    data = str(Path(args.data).resolve())
    updates = batches_per_pass(data)
    print(f"{updates} updates per run (one pass over labeled)", file=sys.stderr)
    runs = {arm: [] for arm in ["stock_ctc"] + [a for a in args.arms if a != "stock_ctc"]}
    for _ in range(args.repeats):
        for arm in runs:
            runs[arm].append(seconds_per_update(ARMS[arm], data, updates))
            print(f"{arm}: {runs[arm][-1]:.3f} s/update", file=sys.stderr)
    stock = statistics.median(runs["stock_ctc"])
    print("| arm | s/update | / stock CTC |\n|---|---|---|")
    for arm, times in runs.items():
        print(f"| {arm} | {statistics.median(times):.3f} | {statistics.median(times) / stock:.3f} |")


if __name__ == "__main__":
    main()
