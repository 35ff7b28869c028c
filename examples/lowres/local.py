"""Helpers of the low-resource benchmark's stage runner (examples/lowres/run.sh).

    python examples/lowres/local.py oracle-manifest --data data/lowres
    python examples/lowres/local.py best --exp exp/lowres/labeled_10min --seed 1 d0.1_m0.2 d0.3_m0.6
    python examples/lowres/local.py rebuild --exp exp/lowres --page docs/results/lowres.md

`rebuild` copies what every figure derives from (per-utterance hypotheses, validation curves,
per-run facts) next to the page, in `<page without .md>/`, then renders the page and the plot
from those files alone, so a reader can audit every number without the checkpoints.
"""
import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional

SPLITS = ("test", "test_ood")
ORACLE_PARTS = ("labeled", "unlabeled")


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def oracle_manifest(data: Path) -> None:
    """`oracle` = `labeled` + `unlabeled` with their true transcripts (the oracle ceiling's data)."""
    tsv, ltr, wrd = [], [], []
    for part in ORACLE_PARTS:
        rows = (data / f"{part}.tsv").read_text().splitlines()
        if tsv and rows[0] != tsv[0]:
            raise SystemExit(f"error: {data / part}.tsv has root {rows[0]!r}, {data}/labeled.tsv {tsv[0]!r}")
        tsv += rows if not tsv else rows[1:]
        ltr += (data / f"{part}.ltr").read_text().splitlines()
        wrd += (data / f"{part}.wrd").read_text().splitlines()
    for ext, lines in (("tsv", tsv), ("ltr", ltr), ("wrd", wrd)):
        write_atomic(data / f"oracle.{ext}", "".join(line + "\n" for line in lines))


def _fields(line: str) -> Dict[str, float]:
    """Numeric `key value` (valid lines) or `key=value` (train lines) fields of a fairseq log line."""
    out = {}
    for key, value in re.findall(r"(\w+)[ =](-?[\d.]+(?:e-?\d+)?)(?=,|\s*\||\s*$)", line):
        try:
            out[key] = float(value)
        except ValueError:
            pass
    return out


def read_log(path: Path) -> Dict[str, List[Dict[str, float]]]:
    """Validation and training records of a fairseq-hydra-train log."""
    records = {"valid": [], "train": []}
    if not path.exists():
        return records
    for line in path.read_text(errors="replace").splitlines():
        if "valid on 'valid' subset" in line:
            records["valid"].append(_fields(line))
        elif "[train_inner]" in line or "[train][INFO]" in line:  # interval lines and epoch summaries
            records["train"].append(_fields(line.split("][INFO]", 1)[1]))
    return records


def best_point(exp: Path, seed: int, points: List[str]) -> str:
    scores = {}
    for point in points:
        valid = read_log(exp / f"baseline_{point}_s{seed}" / "hydra" / "hydra_train.log")["valid"]
        uers = [r["uer"] for r in valid if "uer" in r]
        if uers and (exp / f"baseline_{point}_s{seed}" / "DONE").exists():
            scores[point] = min(uers)
    if not scores:
        raise SystemExit(f"error: no finished sweep run under {exp} (stage 2 first)")
    return min(scores, key=scores.get)


def collect(exp: Path, store: Path) -> None:
    """Copy the small files of every finished run (and the references, once) into ``store``."""
    from sslasr_plugin.decoding.report import read_generate_output  # imports fairseq: only here

    (store / "refs").mkdir(parents=True, exist_ok=True)
    for done in sorted(exp.rglob("DONE")):
        run = done.parent
        dest = store / run.relative_to(exp)
        dest.mkdir(parents=True, exist_ok=True)
        for split in SPLITS:
            if not (run / f"decode_{split}").exists():
                continue
            pairs = read_generate_output(str(run / f"decode_{split}" / f"generate-{split}.txt"))
            refs = "".join(ref + "\n" for ref, _ in pairs)
            ref_file = store / "refs" / f"{split}.txt"
            if ref_file.exists() and ref_file.read_text() != refs:
                raise SystemExit(f"error: {run}/decode_{split} was decoded on other references than {ref_file}: "
                                 "runs of different corpora cannot share a page (use another --page)")
            write_atomic(ref_file, refs)
            write_atomic(dest / f"{split}.hyp", "".join(hyp + "\n" for _, hyp in pairs))
        log = read_log(run / "hydra" / "hydra_train.log")
        curve = ["num_updates\tloss\tuer\twer"] + [
            f"{int(r.get('num_updates', 0))}\t{r.get('loss', '')}\t{r.get('uer', '')}\t{r.get('wer', '')}"
            for r in log["valid"]
        ]
        write_atomic(dest / "valid_curve.tsv", "\n".join(curve) + "\n")
        train = log["train"]
        pl = [r["pl_cer"] for r in train if "pl_cer" in r]
        facts = {
            "updates": int(max((r.get("num_updates", 0) for r in train + log["valid"]), default=0)),
            "best_valid_cer": min((r["uer"] for r in log["valid"] if "uer" in r), default=None),
            # fairseq's wall clock is checkpointed, so it spans every attempt of a resumed run.
            "wall_seconds": max((r["wall"] for r in train if "wall" in r), default=None),
            "pl_cer_last": pl[-1] if pl else None,
            "pl_cer_mean": sum(pl) / len(pl) if pl else None,
        }
        write_atomic(dest / "facts.json", json.dumps(facts, indent=1) + "\n")


def _runs(store: Path) -> Dict[str, Path]:
    return {str(p.parent.relative_to(store)): p.parent for p in sorted(store.rglob("facts.json"))}


def _errors(store: Path, run: Path, split: str):
    from sslasr_plugin.decoding.report import read_hypotheses, utterance_errors

    refs = (store / "refs" / f"{split}.txt").read_text().splitlines()
    return utterance_errors(list(zip(refs, read_hypotheses(run / f"{split}.hyp"))))


def _rate(errs, kind: str) -> float:
    return 100.0 * errs[f"{kind}_errors"].sum() / max(errs[f"{kind}_total"].sum(), 1)


def control_of(name: str) -> Optional[str]:
    """The compute-matched control of a run name (same labeled subset and seed), if it has one."""
    match = re.match(r"(.*/)?(slimipl_\w+?|soft_\w+?)_s(\d+)$", name)
    return f"{match.group(1) or ''}control_s{match.group(3)}" if match else None


def render(store: Path, page: Path, command: str) -> None:
    from sslasr_plugin.decoding.report import paired_bootstrap

    runs = _runs(store)
    rows = ["| run | updates | best valid UER | test CER | test WER | test_ood CER | test_ood WER | "
            "test_ood ΔCER vs control [95% CI] | PL CER (last) | wall min |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for name, run in runs.items():
        facts = json.loads((run / "facts.json").read_text())
        errs = {split: _errors(store, run, split) for split in SPLITS if (run / f"{split}.hyp").exists()}
        rates = {f"{split}_{kind}": f"{_rate(errs[split], kind):.2f}" if split in errs else ""
                 for split in SPLITS for kind in ("char", "word")}
        delta = ""
        control = control_of(name)
        if "test_ood" in errs and control in runs and (runs[control] / "test_ood.hyp").exists():
            ctrl = _errors(store, runs[control], "test_ood")
            d, lo, hi = paired_bootstrap(errs["test_ood"]["char_errors"], ctrl["char_errors"],
                                         errs["test_ood"]["char_total"])
            delta = f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]"
        valid = "" if facts["best_valid_cer"] is None else f"{facts['best_valid_cer']:.2f}"
        pl = "" if facts["pl_cer_last"] is None else f"{facts['pl_cer_last']:.1f}"
        wall = "" if facts["wall_seconds"] is None else f"{facts['wall_seconds'] / 60:.0f}"
        rows.append(f"| {name} | {facts['updates']} | {valid} | {rates['test_char']} | {rates['test_word']} | "
                    f"{rates['test_ood_char']} | {rates['test_ood_word']} | {delta} | {pl} | {wall} |")
    plot = page.with_suffix(".png")
    if runs:
        _plot_curves(store, runs, plot)
        table = "\n".join(rows) + f"\n\n![validation CER against updates]({plot.name})"
    else:
        table = "No run has finished yet."
    text = PAGE.format(command=command, table=table, store=store.name)
    write_atomic(page, text)


def _plot_curves(store: Path, runs: Dict[str, Path], out: Path) -> None:
    import logging

    import matplotlib

    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # fairseq's logging setup lets its debug lines through
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for name, run in runs.items():
        lines = (run / "valid_curve.tsv").read_text().splitlines()[1:]
        points = [(int(u), float(c)) for u, _, c, _ in (line.split("\t") for line in lines) if c]
        if points:
            ax.plot(*zip(*points), marker=".", label=name)
    ax.set_xlabel("updates (each run's own count; PL arms and controls start from their baseline)")
    ax.set_ylabel("valid CER % (greedy)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


PAGE = """# Low-resource benchmark: what the unlabeled audio buys

The question: does a semi-supervised arm beat a fully trained supervised baseline given the
same compute? Corpus `python -m data_prep.corpus --preset lowres` (seed 1): `labeled_1h`
(1,220 utterances, 1.01 h) with the nested `labeled_10min` (its first 204, 10.1 min), `unlabeled`
(8,600, 7.03 h) in the training voices, `unlabeled_ood` (1,220, 1.00 h) in held-out voices with
sentences disjoint from `test_ood`'s, and 700 utterances (0.57-0.58 h) in each of valid / test /
test_ood, from the fixed evaluation pool that no training split of any preset uses. Model: the
demo's (`examples/ctc/scratch_fbank.yaml`). Greedy CTC decoding, no LM.

Protocol (`examples/lowres/run.sh`, one stage each):
- *oracle* (`oracle_s1`): the same model on `labeled` + `unlabeled` with the true transcripts,
  the ceiling perfect pseudo-labels would reach;
- *baseline* (`baseline_<point>_s<seed>`): supervised on the labeled subset, its dropout and
  masking picked on valid from a small sweep (`d<dropout>_m<mask_prob>`), each run trained until
  valid CER stops improving (`checkpoint.patience`) or its update budget ends;
- *control* (`control_s<seed>`): the supervised continuation of that seed's baseline, with the
  schedule, LR and total updates of the PL arms (`examples/slimipl/slimipl.yaml
  +variant=supervised_only`);
- *slimIPL, hard labels* (`slimipl_hard_s<seed>`, and `slimipl_hard_ood_s1` on `unlabeled_ood`):
  from the same baseline checkpoint, 1 labeled : 4 pseudo-labeled updates, cache 100, p = 0.3,
  so that most unlabeled utterances are labeled at least once.

CER and WER in %; valid is fairseq's letter error rate (word boundaries counted) of the selected
checkpoint; ΔCER is an arm's test_ood CER minus its control's (same start, same total updates,
same seed) with a paired per-utterance bootstrap 95% interval; PL CER is the pseudo-labels' CER
against the kept-aside transcripts at the last logged interval.

Reproduce (stages are resumable; finished ones are skipped):

    {command}

Every figure derives from the files in [`{store}/`]({store}/) (per-utterance hypotheses,
validation curves, per-run facts); this page and its plot are rebuilt from them by stage 7.

{table}
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("oracle-manifest")
    p.add_argument("--data", type=Path, required=True)
    p = sub.add_parser("best")
    p.add_argument("--exp", type=Path, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("points", nargs="+")
    p = sub.add_parser("rebuild")
    p.add_argument("--exp", type=Path, required=True)
    p.add_argument("--page", type=Path, required=True)
    p.add_argument("--command", default="PATH=$PWD/.venv/bin:$PATH bash examples/lowres/run.sh --stage 0 --stop-stage 7")
    args = parser.parse_args(argv)
    if args.cmd == "oracle-manifest":
        oracle_manifest(args.data)
    elif args.cmd == "best":
        print(best_point(args.exp, args.seed, args.points))
    else:
        store = args.page.with_suffix("")
        collect(args.exp, store)
        render(store, args.page, args.command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
