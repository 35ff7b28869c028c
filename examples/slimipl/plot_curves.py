"""Training curves of pseudo-labeling runs, from fairseq's logs, as one PNG.

    python examples/slimipl/plot_curves.py --out exp/slimipl_curves.png \
        hard=exp/slimipl_hard/hydra/hydra_train.log soft=exp/slimipl_soft/hydra/hydra_train.log

Panels: valid WER, and per log interval the pseudo-labels' token error rate against the oracle
transcripts (pl_cer), their token rate against the labeled data's (pl_rate_ratio: collapse
drives it to 0) and the share of blank argmax frames (pl_blank_ratio).
"""
import argparse
import re
from collections import defaultdict
from typing import Dict, List, Tuple

TRAIN = re.compile(r"\[train_inner\].*?num_updates=(\d+)")
VALID = re.compile(r"\[valid\].*\| num_updates (\d+)")
PAIR = {"train_inner": re.compile(r"(\w+)=([-\d.eE+]+)"), "valid": re.compile(r"\| (\w+) ([-\d.eE+]+)")}
PANELS = [("valid", "wer", "valid WER (%)"), ("train_inner", "pl_cer", "pseudo-label token error rate (%)"),
          ("train_inner", "pl_rate_ratio", "pseudo-label tokens/s ÷ labeled"),
          ("train_inner", "pl_blank_ratio", "blank argmax frames")]


def read_log(path: str) -> Dict[str, Dict[str, List[Tuple[int, float]]]]:
    """{"train_inner"|"valid": {metric: [(update, value), ...]}}"""
    curves = {kind: defaultdict(list) for kind in PAIR}
    with open(path, encoding="utf-8") as f:
        for line in f:
            for kind, pattern in (("train_inner", TRAIN), ("valid", VALID)):
                m = pattern.search(line)
                if m:
                    update = int(m.group(1))
                    for key, value in PAIR[kind].findall(line):
                        curves[kind][key].append((update, float(value)))
    return curves


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", metavar="NAME=LOG")
    parser.add_argument("--out", required=True, help="PNG to write")
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PANELS), figsize=(5 * len(PANELS), 4))
    for i, run in enumerate(args.runs):
        name, path = run.split("=", 1)
        curves = read_log(path)
        for ax, (kind, key, title) in zip(axes, PANELS):
            points = curves[kind].get(key)
            if points:
                ax.plot(*zip(*points), label=name, color=f"C{i}", marker="." if kind == "valid" else None)
            ax.set_title(title)
            ax.set_xlabel("update")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="upper center", ncol=len(args.runs))
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    fig.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
