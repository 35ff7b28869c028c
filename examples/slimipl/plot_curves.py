"""Training curves of pseudo-labeling runs, from fairseq's logs, as one PNG.

    python examples/slimipl/plot_curves.py --out exp/slimipl_curves.png \
        hard=exp/slimipl_hard/hydra/hydra_train.log soft=exp/slimipl_soft/hydra/hydra_train.log

Panels: valid WER, and per log interval the pseudo-labels' token error rate against the oracle
transcripts (pl_cer), their token rate against the labeled data's (pl_rate_ratio: collapse
drives it to 0) and the share of blank argmax frames (pl_blank_ratio).
"""
import argparse
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Tuple

from sslasr_data.train_log import read_log

PANELS = [("valid", "wer", "valid WER (%)"), ("train", "pl_cer", "pseudo-label token error rate (%)"),
          ("train", "pl_rate_ratio", "pseudo-label tokens/s ÷ labeled"),
          ("train", "pl_blank_ratio", "blank argmax frames")]


def curves(path: str) -> Dict[str, Dict[str, List[Tuple[int, float]]]]:
    """{"train"|"valid": {metric: [(update, value), ...]}} of one log (per-interval training lines)."""
    out = {}
    for kind, records in read_log(Path(path), epoch_summaries=False).items():
        out[kind] = defaultdict(list)
        for r in records:
            if "num_updates" not in r:
                continue
            for key, value in r.items():
                if key != "num_updates":
                    out[kind][key].append((int(r["num_updates"]), value))
    return out


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
        run_curves = curves(path)
        for ax, (kind, key, title) in zip(axes, PANELS):
            points = run_curves[kind].get(key)
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
