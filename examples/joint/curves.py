"""Learning curves of joint CPC + CTC runs against the updates of each loss, from their logs.

    python examples/joint/curves.py --out exp/joint_paper_curves.png --tsv-dir exp/joint_paper_curves \
        joint=exp/joint_paper_joint update_ratio_5=exp/joint_paper_update_ratio_5

Arms with other update ratios (1:1, 5:1, a two-stage run) made different numbers of CTC updates by
the same total, so every point is placed at the updates its loss had made: each run's schedule
(`task.pretrain_updates`, `unsup_updates`, `sup_updates`, as its log prints them) counts them as the
task does.  Panels: valid letter error rate (fairseq's `uer`, word boundaries counted) against
CTC updates; training CTC loss against CTC updates; contrastive accuracy against contrastive
updates.  With --tsv-dir, one `<name>.tsv` per run: each validation's total, CTC and contrastive
updates, letter error rate and loss (the files the plot's first panel derives from).
"""
import argparse
import logging
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import List, Tuple

from sslasr_data.files import write_text
from sslasr_data.train_log import config_values, log_text, read_log
from sslasr_plugin.batch_modes import SUP, UNSUP
from sslasr_plugin.tasks.joint import JointTask

PANELS = [("valid", "uer", SUP, "valid letter error rate (%)", "CTC updates"),
          ("train", "sup_loss", SUP, "training CTC loss", "CTC updates"),
          ("train", "unsup_accuracy", UNSUP, "contrastive accuracy (training)", "contrastive updates")]


class Run:
    """One joint run's log, read once: its schedule, as the task builds it from the config the log
    prints, and its validation and per-interval training records."""

    def __init__(self, log: Path):
        text = log_text(log)
        values = config_values(None, "task", ["pretrain_updates", "unsup_updates", "sup_updates"], text)
        if None in values.values():
            raise SystemExit(f"error: {log} does not print a joint task's pretrain_updates, unsup_updates and "
                             "sup_updates: is it the log of an examples/joint run (hydra/hydra_train.log)?")
        self.plan = JointTask.build_schedule(SimpleNamespace(**{key: int(v) for key, v in values.items()}))
        self.records = read_log(None, epoch_summaries=False, text=text)

    def points(self, kind: str, key: str, mode: str) -> List[Tuple[int, float]]:
        """(updates of ``mode`` made, value) of ``key`` at each ``kind`` line that has it.  A training
        line averages its interval, which ends at its num_updates."""
        return [(self.plan.count(mode, int(r["num_updates"])), r[key])
                for r in self.records[kind] if key in r and "num_updates" in r]

    def curve_table(self) -> str:
        rows = ["num_updates\tctc_updates\tcontrastive_updates\tvalid_uer\tvalid_loss"]
        for r in self.records["valid"]:
            n = int(r.get("num_updates", 0))
            rows.append(f"{n}\t{self.plan.count(SUP, n)}\t{self.plan.count(UNSUP, n)}\t{r.get('uer', '')}\t{r.get('loss', '')}")
        return "\n".join(rows) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", metavar="NAME=RUN_DIR", help="a run's save dir (holding hydra/hydra_train.log)")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--tsv-dir", help="where to write each run's validation curve as <name>.tsv")
    args = parser.parse_args(argv)
    runs = []
    for spec in args.runs:
        name, sep, path = spec.partition("=")
        log = Path(path) / "hydra" / "hydra_train.log"
        if not sep or not log.exists():
            raise SystemExit(f"error: {spec!r}: give NAME=RUN_DIR with RUN_DIR/hydra/hydra_train.log")
        runs.append((name, Run(log)))
    if args.tsv_dir:
        Path(args.tsv_dir).mkdir(parents=True, exist_ok=True)
        for name, run in runs:
            write_text(Path(args.tsv_dir) / f"{name}.tsv", run.curve_table())
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # fairseq's import sets the root logger to DEBUG
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PANELS), figsize=(5 * len(PANELS), 4))
    for i, (name, run) in enumerate(runs):
        for ax, (kind, key, mode, title, xlabel) in zip(axes, PANELS):
            xy = run.points(kind, key, mode)
            if xy:
                ax.plot(*zip(*xy), label=name, color=f"C{i}", marker="." if kind == "valid" else None)
            ax.set_title(title)
            ax.set_xlabel(xlabel)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="upper center", ncol=len(runs))
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    fig.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
