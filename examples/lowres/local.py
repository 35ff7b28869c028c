"""Helpers of the low-resource benchmark's stage runner (examples/lowres/run.sh).

    python examples/lowres/local.py oracle-manifest --data data/lowres
    python examples/lowres/local.py combine --data data/lowres --name unlabeled_both unlabeled unlabeled_ood
    python examples/lowres/local.py best --exp exp/lowres/labeled_10min --seed 1 d0.1_m0.2 d0.3_m0.6
    python examples/lowres/local.py rebuild --exp exp/lowres --page docs/results/lowres.md
    python examples/lowres/local.py carry --run exp/lowres/labeled_10min/baseline_d0.1_m0.2_s1 \
        --to docs/results/lowres/labeled_10min/baseline_d0.1_m0.2_s1/init.pt
    python examples/lowres/local.py label-quality --data data/lowres --split unlabeled_ood \
        --generate exp/labels/generate-unlabeled_ood.txt

`rebuild` copies what every figure derives from (per-utterance hypotheses, validation curves,
per-run facts) next to the page, in `<page without .md>/`, then renders the page and the plot
from those files alone, so a reader can audit every number without the checkpoints.
"""
import argparse
import json
import logging
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from data_prep.text import letters
from sslasr_data.files import write_text
from sslasr_data.train_log import config_value, config_values, log_text, read_log, wall_seconds
from sslasr_data.validate import read_manifest

SPLITS = ("test", "test_ood")
SAMPLE_RATE = 16000
ORACLE_PARTS = ("labeled", "unlabeled")


def combine(data: Path, name: str, parts: Sequence[str]) -> None:
    """Split ``name`` of ``data`` = ``parts`` one after the other, with their transcripts where every
    part has them (`oracle`: the oracle ceiling's data; `unlabeled_both`: the wav2vec 2.0 arm's)."""
    for part in parts:
        if not (data / f"{part}.tsv").exists():
            raise SystemExit(f"error: {data / part}.tsv does not exist: build the corpus first (stage 0)")
    tsv = []
    for part in parts:
        rows = (data / f"{part}.tsv").read_text().splitlines()
        if tsv and rows[0] != tsv[0]:
            raise SystemExit(f"error: {data / part}.tsv has root {rows[0]!r}, {data / parts[0]}.tsv {tsv[0]!r}: "
                             "the parts must share one audio root")
        tsv += rows if not tsv else rows[1:]
    write_text(data / f"{name}.tsv", "".join(line + "\n" for line in tsv))
    for ext in ("ltr", "wrd"):
        if all((data / f"{part}.{ext}").exists() for part in parts):
            lines = [line for part in parts for line in (data / f"{part}.{ext}").read_text().splitlines()]
            write_text(data / f"{name}.{ext}", "".join(line + "\n" for line in lines))


def run_config(text: str) -> Dict[str, str]:
    """The task's `data` and `train_subset` as the run's log (its text) prints its config (empty if absent)."""
    found = {"data": config_value(None, "task", "data", text),
             "train_subset": config_value(None, "dataset", "train_subset", text)}
    return found if all(found.values()) else {}


STARTED_FROM = re.compile(r"baseline_(d[\d.]+_m[\d.]+)_s\d+")


def sweep_point(text: str) -> Optional[str]:
    """The baseline sweep point ("d<dropout>_m<mask_prob>") a run belongs to, from its log's config
    (``text``): the point of the baseline it starts from (checkpoint.finetune_from_model of the PL
    arms and controls, model.init_encoder of a frame teacher, named ``baseline_<point>_s<seed>``),
    else the dropout and masking it trains with (a baseline, a fine-tuning after pre-training).
    None: the log prints no config."""
    for group, key in (("checkpoint", "finetune_from_model"), ("model", "init_encoder")):
        m = STARTED_FROM.fullmatch(Path(config_value(None, group, key, text) or "").parent.name)
        if m:
            return m.group(1)
    model = config_values(None, "model", ["dropout", "mask_prob"], text)
    if None in model.values():
        return None
    try:
        return f"d{float(model['dropout']):g}_m{float(model['mask_prob']):g}"
    except ValueError:
        return None


def check_point(run: Path, store_run: Path, point: str, sweep: str) -> None:
    """Refuses a run that belongs to another sweep point than ``point``, the one the runner starts
    from now (the best of ``sweep`` on valid): its log here says which, or, for a run kept in the
    store (trained on another machine), the ``sweep_point`` of its facts.json.  The names of the
    runs after stage 3 do not carry the point, so without this a change of the best point (a new
    sweep run that wins) would resume a half-trained arm with another point's dropout, or count a
    kept control of the old point as the new point's."""
    log = run / "hydra" / "hydra_train.log"
    where, then = log, sweep_point(log_text(log))
    facts = store_run / "facts.json"
    if then is None and facts.exists():
        where, then = facts, json.loads(facts.read_text()).get("sweep_point")
        if then is None:
            raise SystemExit(f"error: {facts} does not say which sweep point {run.name} started from (no "
                             f"\"sweep_point\"): add it (\"sweep_point\": \"d0.2_m0.4\", as its baseline's name says), or move "
                             f"{store_run} aside to train the run again from {point}")
    if then is not None and then != point:
        raise SystemExit(
            f"error: {run.name} started from sweep point {then} ({where}), and the runner now starts from {point} "
            f"(the best of --sweep \"{sweep}\" on valid): pass --sweep {then} to go on with that point's "
            f"benchmark, or move {run} and {store_run} aside to train the run again from {point}")


def same_classes(labels: Path, classes: Path) -> None:
    """Refuses frame labels (a data_prep.align output) whose context-dependent classes are not those
    of ``classes`` (stage 9's, which the CSL and CE-PL arms they are the ceiling of learn): the same
    letters in context must map to the same class names."""
    for d in (labels, classes):
        if not (d / "units.json").exists():
            raise SystemExit(f"error: {d / 'units.json'} does not exist: give two output directories of data_prep.align")
    mine, theirs = (json.loads((d / "units.json").read_text())["units"] for d in (labels, classes))
    if mine != theirs:
        raise SystemExit(f"error: the classes of {labels} are not those of {classes} (stage 9's): they were fitted "
                         f"on another alignment; remove {labels} and run again")


def frame_agreement(labels: Path, reference: Path) -> Dict[str, float]:
    """How frame labels (a teacher's .plab) agree with reference labels in the same classes (e.g.
    the true transcripts aligned, a data_prep.align .unit): per frame, the same class and the same
    letter (data_prep.units.class_letter); and over pairs of distinct frames, what CSL's
    positives and negatives rest on: P(same reference class | same label) (how many positives are
    right), P(same reference class | different label) (how many negatives are not) and
    P(same label | same reference class)."""
    from data_prep.units import class_letter

    rows = [path.read_text().splitlines() for path in (labels, reference)]
    if len(rows[0]) != len(rows[1]):
        raise SystemExit(f"error: {labels} has {len(rows[0])} lines and {reference} {len(rows[1])}: "
                         "give the labels and the reference of the same split")
    mine: List[str] = []
    theirs: List[str] = []
    for n, (a, b) in enumerate(zip(*rows), 1):
        a, b = a.split(), b.split()
        if len(a) != len(b):
            raise SystemExit(f"error: {labels}:{n} has {len(a)} frames and {reference}:{n} {len(b)}: "
                             "the two were made at other frame rates or of other audio")
        mine += a
        theirs += b
    if not mine:
        raise SystemExit(f"error: {labels} has no frames")
    if not set(mine) & set(theirs):
        raise SystemExit(f"error: {labels} and {reference} share no class: compare labels in the same classes "
                         "(a teacher's and an alignment into its classes, data_prep.align --ctc --units)")
    names, codes = np.unique(np.array(mine + theirs), return_inverse=True)
    x, y = codes[:len(mine)], codes[len(mine):]
    letter = np.array([class_letter(name) for name in names])

    def same_pairs(*keys) -> float:  # ordered pairs of distinct frames that agree on every key
        _, counts = np.unique(np.stack(keys), axis=1, return_counts=True)
        return float((counts * (counts - 1.0)).sum())

    n = float(len(x))
    same_label, same_ref, same_both = same_pairs(x), same_pairs(y), same_pairs(x, y)
    return {"frames": int(n), "accuracy": float((x == y).mean()), "letter_accuracy": float((letter[x] == letter[y]).mean()),
            "positives_right": same_both / same_label if same_label else float("nan"),
            "negatives_same_class": (same_ref - same_both) / (n * (n - 1) - same_label),
            "same_class_same_label": same_both / same_ref if same_ref else float("nan")}


def subset_minutes(data: Path, subset: str) -> Optional[float]:
    """Minutes of 16 kHz audio in ``data/subset.tsv`` (None if the manifest is gone)."""
    tsv = data / f"{subset}.tsv"
    if not tsv.exists():
        return None
    _, rows = read_manifest(str(tsv))
    return sum(samples for _, _, samples in rows) / SAMPLE_RATE / 60


def weighed_subsets(data: Path, big: str, small: str) -> str:
    """``big`` and ``small`` as a ``task.unlabeled_subsets`` list in which ``small`` is named as many
    times as it takes to weigh about as much audio as ``big`` (a subset named n times is drawn n
    times an epoch): ``unlabeled,unlabeled_ood,...,unlabeled_ood``."""
    minutes = {name: subset_minutes(data, name) for name in (big, small)}
    for name, value in minutes.items():
        if not value:
            raise SystemExit(f"error: {data / (name + '.tsv')} is missing or holds no audio: build the corpus "
                             "first (examples/lowres/run.sh --stage 0)")
    return ",".join([big] + [small] * max(1, round(minutes[big] / minutes[small])))


def best_point(exp: Path, seed: int, points: List[str], store: Optional[Path] = None) -> str:
    """The sweep point whose run of ``seed`` reached the lowest valid CER: from its log when it ran
    on this machine, else from the validation curve kept in ``store`` (a run of another machine)."""
    scores = {}
    for point in points:
        name = f"baseline_{point}_s{seed}"
        valid = read_log(exp / name / "hydra" / "hydra_train.log")["valid"]
        uers = [r["uer"] for r in valid if "uer" in r] if (exp / name / "DONE").exists() else []
        curve = store / name / "valid_curve.tsv" if store is not None else None
        if not uers and curve is not None and curve.exists():
            rows = [line.split("\t") for line in curve.read_text().splitlines()[1:]]
            uers = [float(row[2]) for row in rows if len(row) > 2 and row[2]]
        if uers:
            scores[point] = min(uers)
    if not scores:
        raise SystemExit(f"error: no finished sweep run under {exp}" + (f" or {store}" if store else "") +
                         " (stage 2 first)")
    return min(scores, key=scores.get)


def check_budget(run: Path, max_update: int) -> None:
    """Refuses to resume ``run`` under another update budget than its checkpoint_last.pt's: the
    LR schedules' phases (tri-stage's warm-up, hold and decay) scale with the budget, so a
    resumed run would not train as a run of either budget (on 2026-12-06 a run resumed at 3,000
    of 4,000 updates with 8,000 went back to its peak LR; docs/results/lowres/notes.md)."""
    from sslasr_plugin.checkpoint import load_checkpoint

    path = run / "checkpoint_last.pt"
    cfg = load_checkpoint(str(path)).get("cfg") or {}
    then = (cfg.get("optimization") or {}).get("max_update")
    if then is not None and int(then) != max_update:
        raise SystemExit(
            f"error: {path} was trained with optimization.max_update={then}, and would resume with {max_update}: "
            "the LR schedule's phases scale with the budget, so the run would train as neither budget would "
            f"(tri-stage's LR jumps to where the new budget's schedule is at that update). Resume with the checkpoint's budget ({then}), or train the "
            f"other budget as a new run: another --exp, or move {run} aside")


def carry(run: Path, to: Path) -> None:
    """A finished run's selected weights, kept next to its figures so that the stages after it can
    start from them on another machine (run.sh restores them when the run's directory is missing).
    Model only, in fp16: ~2 bytes a parameter instead of the checkpoint's ~12 (fp32 weights and
    Adam's two moments); the optimizer state, EMA and training-iterator position are dropped, as
    checkpoint.finetune_from_model (how every later stage starts) resets them anyway."""
    import torch

    from sslasr_plugin.checkpoint import load_checkpoint

    src = run / "checkpoint_best.pt"
    if not src.exists():
        raise SystemExit(f"error: {src} does not exist: only a finished run can be carried")
    state = load_checkpoint(str(src))
    state["model"] = {k: v.half() if v.is_floating_point() else v for k, v in state["model"].items()}
    state["last_optimizer_state"] = None
    state["extra_state"] = {k: v for k, v in state.get("extra_state", {}).items() if k in ("train_iterator", "val_loss")}
    to.parent.mkdir(parents=True, exist_ok=True)
    tmp = to.with_name(to.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(to)


def _first_difference(kept: str, new: str) -> str:
    """Where two reference lists part: their line counts and the first line that differs."""
    a, b = kept.splitlines(), new.splitlines()
    line = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    at = (f"line {line + 1} is {a[line]!r} there, {b[line]!r} here" if line < min(len(a), len(b))
          else f"they agree on the first {line} lines")
    return f"{len(a)} utterances there, {len(b)} here; {at}"


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
            kept = ref_file.read_text() if ref_file.exists() else refs
            if kept != refs:
                raise SystemExit(f"error: {run}/decode_{split} was decoded on other references than {ref_file}: "
                                 f"{_first_difference(kept, refs)}; runs of different corpora "
                                 "cannot share a page (use another --page)")
            write_text(ref_file, refs)
            write_text(dest / f"{split}.hyp", "".join(hyp + "\n" for _, hyp in pairs))
        text = log_text(run / "hydra" / "hydra_train.log")
        log = read_log(None, text=text)
        curve = ["num_updates\tloss\tuer\twer"] + [
            f"{int(r.get('num_updates', 0))}\t{r.get('loss', '')}\t{r.get('uer', '')}\t{r.get('wer', '')}"
            for r in log["valid"]
        ]
        write_text(dest / "valid_curve.tsv", "\n".join(curve) + "\n")
        train = log["train"]
        pl = [r["pl_cer"] for r in train if "pl_cer" in r]
        seen = [r["pl_unlabeled_h"] for r in train if "pl_unlabeled_h" in r]  # a running total
        config = run_config(text)
        facts = {
            "updates": int(max((r.get("num_updates", 0) for r in train + log["valid"]), default=0)),
            "best_valid_cer": min((r["uer"] for r in log["valid"] if "uer" in r), default=None),
            "wall_seconds": wall_seconds(None, text=text),  # every launch of a resumed run
            "pl_cer_last": pl[-1] if pl else None,
            "pl_cer_mean": sum(pl) / len(pl) if pl else None,
            "unlabeled_hours_labeled": seen[-1] if seen else None,
            # several unlabeled subsets: each one's label CER at the last interval that labeled it
            "pl_cer_last_by_subset": {k[len("pl_cer_"):]: v for r in train for k, v in r.items()
                                      if k.startswith("pl_cer_")} or None,
            "train_subset": config.get("train_subset"),
            "train_minutes": subset_minutes(Path(config["data"]), config["train_subset"]) if config else None,
            "sweep_point": sweep_point(text),
        }
        write_text(dest / "facts.json", json.dumps(facts, indent=1) + "\n")
    # how good stage 6's fixed labels of the held-out voices were (the decodes themselves stay in exp/)
    for quality in sorted(exp.glob("*/ood_labels_*/label_quality.md")):
        kept = store / quality.relative_to(exp)
        kept.parent.mkdir(parents=True, exist_ok=True)
        write_text(kept, quality.read_text())


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
    match = re.match(r"(.*/)?(slimipl_\w+?|soft_\w+?|csl_\w+?|ce_pl_\w+?|w2v2_\w+?|hubert_\w+?|joint\w*?)_s(\d+)$", name)
    return f"{match.group(1) or ''}control_s{match.group(3)}" if match else None


def rival_of(name: str) -> Optional[str]:
    """A CSL run's CE-PL counterpart (same teacher's labels, same budgets, same seed): the
    comparison the CSL paper makes."""
    match = re.match(r"(.*/)?csl_(\w+_s\d+)$", name)
    return f"{match.group(1) or ''}ce_pl_{match.group(2)}" if match else None


def arm_of(name: str) -> Tuple[str, Optional[int]]:
    """``labeled_10min/slimipl_hard_s2`` -> (``labeled_10min/slimipl_hard``, 2)."""
    match = re.match(r"(.*)_s(\d+)$", name)
    return (match.group(1), int(match.group(2))) if match else (name, None)


def _delta(store: Path, runs: Dict[str, Path], pairs: List[Tuple[str, str]], split: str) -> str:
    """ΔCER of arm minus control on ``split`` over every (arm, control) pair, with a paired
    bootstrap 95% interval and the difference relative to the controls' CER.  The test utterances
    are what is resampled: each one's errors are summed over the seeds first (every run decoded
    the same references in the same order), since one utterance's difference is correlated from
    seed to seed and resampling its copies as independent would narrow the interval."""
    from sslasr_plugin.decoding.report import paired_bootstrap

    arm, ctrl = [], []
    for name, control in pairs:
        if not ((runs[name] / f"{split}.hyp").exists() and (runs[control] / f"{split}.hyp").exists()):
            return ""
        arm.append(_errors(store, runs[name], split))
        ctrl.append(_errors(store, runs[control], split))
    if not arm:
        return ""
    a_err = np.sum([e["char_errors"] for e in arm], axis=0)
    c_err = np.sum([e["char_errors"] for e in ctrl], axis=0)
    total = np.sum([e["char_total"] for e in ctrl], axis=0)
    d, lo, hi = paired_bootstrap(a_err, c_err, total)
    control_cer = 100.0 * c_err.sum() / max(total.sum(), 1)
    return f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}] ({100 * d / max(control_cer, 1e-9):+.0f}% rel.)"


def _label_ladder(store: Path, runs: Dict[str, Path], rates) -> List[str]:
    """The table of stage 6's fixed-label runs (``slimipl_fixed_ood_<teacher>_s<seed>``), each with
    its labels' CER (the label_quality.md that ``collect`` kept), best label CER first."""
    rows = []
    for name in runs:
        match = re.match(r"(.*/)?slimipl_fixed_ood_(\w+)_s(\d+)$", name)
        quality = store / f"{match.group(1) or ''}ood_labels_{match.group(2)}_s{match.group(3)}" / "label_quality.md" \
            if match else None
        found = re.search(r"label CER ([0-9.]+)", quality.read_text()) if quality and quality.exists() else None
        control = control_of(name)
        if not found or control not in runs or "test_ood" not in rates[name]:
            continue
        rows.append((float(found.group(1)), f"| {match.group(2)} | {match.group(3)} | {found.group(1)} | "
                     f"{_rate(rates[name]['test_ood'], 'char'):.2f} | "
                     f"{_delta(store, runs, [(name, control)], 'test_ood')} | {_delta(store, runs, [(name, control)], 'test')} |"))
    if not rows:
        return []
    return ["| teacher | seed | label CER | test_ood CER | test_ood ΔCER vs control [95% CI] | test ΔCER vs control |",
            "|---|---|---|---|---|---|"] + [row for _, row in sorted(rows)]


def render(store: Path, page: Path, command: str) -> None:
    runs = _runs(store)
    facts = {name: json.loads((run / "facts.json").read_text()) for name, run in runs.items()}
    rates = {name: {split: _errors(store, run, split) for split in SPLITS if (run / f"{split}.hyp").exists()}
             for name, run in runs.items()}
    if not runs:
        write_text(page, PAGE.format(command=command, summary="No run has finished yet.", table="", store=store.name))
        return

    def cell(name, split, kind):
        errs = rates[name].get(split)
        return f"{_rate(errs, kind):.2f}" if errs is not None else ""

    def fmt(value, spec):
        return "" if value is None else format(value, spec)

    def by_subset(f):
        subsets = f.get("pl_cer_last_by_subset") or {}
        return "".join(f" ({k} {v:.1f})" for k, v in sorted(subsets.items()))

    rows = ["| run | labeled min | updates | best valid UER | test CER | test WER | test_ood CER | test_ood WER "
            "| PL CER (last) | unlabeled h labeled | wall min |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in runs:
        f = facts[name]
        rows.append(f"| {name} | {fmt(f.get('train_minutes'), '.1f')} | {f['updates']} | "
                    f"{fmt(f['best_valid_cer'], '.2f')} | {cell(name, 'test', 'char')} | {cell(name, 'test', 'word')} | "
                    f"{cell(name, 'test_ood', 'char')} | {cell(name, 'test_ood', 'word')} | "
                    f"{fmt(f['pl_cer_last'], '.1f')}{by_subset(f)} | {fmt(f.get('unlabeled_hours_labeled'), '.2f')} | "
                    f"{fmt(f['wall_seconds'] and f['wall_seconds'] / 60, '.0f')} |")

    arms: Dict[str, List[str]] = {}
    for name in runs:
        arms.setdefault(arm_of(name)[0], []).append(name)
    summary = ["| arm | seeds | test CER mean (min-max) | test_ood CER mean (min-max) | test ΔCER vs control "
               "[95% CI] | test_ood ΔCER vs control [95% CI] | test ΔCER per seed | test_ood ΔCER per seed |",
               "|---|---|---|---|---|---|---|---|"]
    for arm, names in arms.items():
        spread = {}
        for split in SPLITS:
            values = [_rate(rates[n][split], "char") for n in names if split in rates[n]]
            spread[split] = (f"{sum(values) / len(values):.2f} ({min(values):.2f}-{max(values):.2f})"
                             if values else "")
        pairs = [(n, control_of(n)) for n in names if control_of(n) in runs]
        deltas = {split: _delta(store, runs, pairs, split) if pairs and len(pairs) == len(names) else ""
                  for split in SPLITS}
        # the interval above is over test utterances; the training seeds' own spread is this
        per_seed = {split: ", ".join(f"{_rate(rates[n][split], 'char') - _rate(rates[c][split], 'char'):+.2f}"
                                     for n, c in pairs if split in rates[n] and split in rates[c])
                    if pairs and len(pairs) == len(names) else "" for split in SPLITS}
        seeds = ", ".join(str(arm_of(n)[1]) for n in names)
        summary.append(f"| {arm} | {seeds} | {spread['test']} | {spread['test_ood']} | {deltas['test']} | "
                       f"{deltas['test_ood']} | {per_seed['test']} | {per_seed['test_ood']} |")

    rivals = {}  # CSL arm -> its runs paired with their CE-PL counterparts
    for arm, names in arms.items():
        pairs = [(n, rival_of(n)) for n in names if rival_of(n) in runs]
        if pairs and len(pairs) == len(names):
            rivals[arm] = pairs
    if rivals:
        summary += ["", "CSL against CE-PL on the same teacher's labels (ΔCER = CSL minus CE-PL, same 95% intervals):",
                    "", "| arm | against | seeds | test ΔCER [95% CI] | test_ood ΔCER [95% CI] |", "|---|---|---|---|---|"]
        for arm, pairs in rivals.items():
            seeds = ", ".join(str(arm_of(n)[1]) for n, _ in pairs)
            summary.append(f"| {arm} | {arm_of(pairs[0][1])[0]} | {seeds} | "
                           + " | ".join(_delta(store, runs, pairs, split) for split in SPLITS) + " |")

    ladder = _label_ladder(store, runs, rates)
    if ladder:
        summary += ["", "slimIPL adapting to the held-out voices on fixed labels (stage 6, `--ood-teachers`): how much "
                    "the adaptation gains for how good its labels are (label CER of `unlabeled_ood` against its true "
                    "transcripts; ΔCER against the seed's control, same 95% intervals):", ""] + ladder

    _plot_curves(store, runs, page.with_suffix(".png"))
    minutes_plot = page.with_name(page.stem + "_minutes.png")
    figures = f"![validation CER against updates]({page.with_suffix('.png').name})"
    if _plot_minutes(facts, rates, arms, minutes_plot):
        figures += f"\n\n![test_ood CER against labeled minutes]({minutes_plot.name})"
    text = PAGE.format(command=command, summary="\n".join(summary), store=store.name,
                       table="\n".join(rows) + "\n\n" + figures)
    notes = store / "notes.md"  # the reading of the figures, written by hand, kept beside them
    if notes.exists():
        text += "\n## Status and reading\n\n" + notes.read_text()
    write_text(page, text)


def _figure(out: Path, xlabel: str, ylabel: str, panels, log_x: bool = False) -> None:
    """One matplotlib figure of one panel per (title, draw) in ``panels``, stacked: ``draw(ax)``
    plots, this labels; each panel's legend sits to its right, in as many columns as keep it about
    as tall as the panel, so that dozens of runs neither hide the curves nor squeeze the axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 5 * len(panels)), squeeze=False)
    for ax, (title, draw) in zip(axes[:, 0], panels):
        draw(ax)
        if log_x:
            ax.set_xscale("log")
        if title:
            ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        handles = len(ax.get_legend_handles_labels()[0])
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), ncol=1 + (handles - 1) // 30,
                  frameon=False)
    fig.savefig(out, dpi=100, bbox_inches="tight")
    plt.close(fig)


MARKERS = ".ox^sv*D"


def curve_styles(names: List[str]) -> Dict[str, Dict[str, str]]:
    """One colour and marker per arm and one line style per seed, so that dozens of runs stay
    apart (the default colour cycle repeats after ten, tab20's after twenty: then the marker
    changes)."""
    import matplotlib

    arms = sorted({arm_of(name)[0] for name in names})
    colours = matplotlib.colormaps["tab20"].colors
    dashes = ["-", "--", ":", "-."]
    styles = {}
    for name in names:
        arm, seed = arm_of(name)
        k = arms.index(arm)  # the dark shades of tab20 first, then the light ones
        styles[name] = {"color": colours[(2 * k) % 20 + (k // 10) % 2], "marker": MARKERS[(k // 20) % len(MARKERS)],
                        "linestyle": dashes[((seed or 1) - 1) % len(dashes)]}
    return styles


def _plot_curves(store: Path, runs: Dict[str, Path], out: Path) -> None:
    """Validation CER against updates, one panel per labeled subset; the runs of no subset (the
    oracle) are drawn in every panel, as the reference."""
    styles = curve_styles(list(runs))
    subsets = sorted({name.split("/", 1)[0] for name in runs if "/" in name})
    shared = [name for name in runs if "/" not in name]

    def panel(subset):
        def draw(ax):
            for name, run in runs.items():
                if name not in shared and not name.startswith(subset + "/"):
                    continue
                lines = (run / "valid_curve.tsv").read_text().splitlines()[1:]
                points = [(int(u), float(c)) for u, _, c, _ in (line.split("\t") for line in lines) if c]
                if points:
                    style = dict(styles[name], color="black", linewidth=2) if name in shared else styles[name]
                    ax.plot(*zip(*points), label=name, markersize=4, **style)
        return subset, draw

    _figure(out, "updates (each run's own count; PL arms and controls start from their baseline)",
            "valid CER % (greedy)", [panel(subset) for subset in subsets] or [("", panel("")[1])])


def _plot_minutes(facts, rates, arms: Dict[str, List[str]], out: Path) -> bool:
    """test_ood CER (mean over seeds, bars min-max) against labeled minutes, one line per arm kind
    seen at two or more labeled sizes; False (no plot) until some kind is."""
    kinds: Dict[str, List[Tuple[float, List[float]]]] = {}
    for arm, names in arms.items():
        minutes = [facts[n].get("train_minutes") for n in names]
        values = [_rate(rates[n]["test_ood"], "char") for n in names if "test_ood" in rates[n]]
        if values and minutes[0] and "/" in arm:  # runs on a labeled subset (not the oracle)
            kinds.setdefault(arm.split("/", 1)[1], []).append((minutes[0], values))
    kinds = {k: sorted(v) for k, v in kinds.items() if len(v) >= 2}
    if not kinds:
        return False

    def draw(ax):
        for kind, points in kinds.items():
            mean = [sum(v) / len(v) for _, v in points]
            err = [[m - min(v) for m, (_, v) in zip(mean, points)], [max(v) - m for m, (_, v) in zip(mean, points)]]
            ax.errorbar([m for m, _ in points], mean, yerr=err, marker="o", capsize=3, label=kind)

    _figure(out, "labeled minutes", "test_ood CER % (greedy; mean over seeds, bars min-max)", [("", draw)], log_x=True)
    return True


PAGE = """# Low-resource benchmark: what the unlabeled audio buys

The question: does a semi-supervised arm beat a fully trained supervised baseline given the
same compute? Corpus `python -m data_prep.corpus --preset lowres` (seed 1): `labeled_1h`
(1,220 utterances, 1.01 h) with the nested `labeled_10min` (its first 204, 10.1 min), `unlabeled`
(8,600, 7.03 h) in the training voices, `unlabeled_ood` (1,220, 1.00 h) in held-out voices with
sentences disjoint from `test_ood`'s, and 700 utterances (0.57-0.58 h) in each of valid / test /
test_ood, from the fixed evaluation pool that no training split of any preset uses. Model: the
demo's (`examples/ctc/scratch_fbank.yaml`). Greedy CTC decoding of every model, no LM (the LM
arm uses an LM only to make its pseudo-labels).

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
  so that most unlabeled utterances are labeled at least once;
- *slimIPL on the true transcripts* (`slimipl_oracle_s1`, `slimipl_oracle_ood_s1`): the same two
  runs with every pseudo-label replaced by the utterance's true transcript (`task.pl_decoder=oracle`),
  the ceiling of those arms at their own schedule, start and updates: how much of the room the
  label errors cost;
- *soft labels + CTC mix* (`soft_ctc_mix_s<seed>`): the same schedule with cached per-frame
  distributions, 0.5 x frame cross-entropy + 0.5 x CTC on the greedy transcript; and
  `soft_ctc_mix_both_s1`, the same run on `unlabeled` and `unlabeled_ood` together (its PL CER
  also per split);
- *slimIPL with another teacher or share* (stage 7's `--pl-arms`): `slimipl_ema_s<seed>`, hard
  labels by an exponential moving average of the model (decay 0.999); `slimipl_frozen_s<seed>`,
  hard labels by the starting baseline throughout (the same average at decay 1, which never moves);
  `slimipl_1to1_s<seed>`, 1 labeled : 1 pseudo-labeled update; otherwise as `slimipl_hard`;
- *slimIPL, LM-decoded labels* (`slimipl_lm_s<seed>`): hard labels from beam search with the
  word 4-gram LM and lexicon of `python -m data_prep.lm` (text holding no evaluation or unlabeled
  sentence of any preset), its LM weight and word score tuned on valid CER with that seed's baseline
  (`tune_lm_s<seed>/`); `slimipl_lm_ood_s1` adapts on `unlabeled_ood` with the same weights
  (the held-out voices have no valid split of their own);
- *CSL and CE-PL with a frame teacher* (`csl_frame_s<seed>`, `ce_pl_frame_s<seed>`): that seed's
  baseline aligns the labeled subset (`data_prep.align`, context-dependent letter classes); a
  frame cross-entropy teacher trained on it from the baseline's encoder labels `unlabeled` frame
  by frame; a student pre-trained from scratch on those labels (CSL's contrastive loss with
  label-aware batching, or CE-PL's frame cross-entropy) is fine-tuned with CTC on the labeled
  subset (`examples/ctc/finetune_w2v.yaml`, the baseline's dropout and masking);
  `csl_frame_oracle_s<seed>` and `ce_pl_frame_oracle_s<seed>`, their ceiling: the same runs on frame
  labels from `unlabeled`'s true transcripts, aligned by the baseline into the same classes (no teacher);
- *wav2vec 2.0* (`w2v2_ctc_s<seed>`, `w2v2_both_ctc_s<seed>`): the same pre-training and
  fine-tuning budgets with wav2vec 2.0's self-supervised loss (`examples/wav2vec2/pretrain_fbank.yaml`,
  no teacher, no labels) on `unlabeled`, or on `unlabeled` + `unlabeled_ood`;
- *HuBERT* (`hubert_ctc_s<seed>`): the same budgets with HuBERT's first iteration
  (`examples/ssl/hubert_iter1.yaml`: masked prediction of 100 k-means clusters of the MFCCs of
  `unlabeled`, `data_prep.hubert_labels`), fine-tuned as the others.  For these five
  arms the updates column counts the fine-tuning only; with the pre-training they equal the
  baseline's budget plus the control's (stage 10's defaults);
- *joint masked CPC + CTC* (`joint_s<seed>`): one run from scratch whose updates alternate, one
  wav2vec 2.0 contrastive update on `unlabeled` + the labeled subset, one CTC update on the labeled
  subset, each loss with its own Adam moments (`examples/joint/joint.yaml`: 1:1 updates and LR,
  where the paper has 20:1 LR, which trained CTC too slowly at the demo's size, `docs/results/joint.md`);
  the updates column counts both kinds, the baseline's budget plus the control's;
  `joint_both_s<seed>`, the same with `unlabeled_ood` in the contrastive stream too (the held-out
  voices' audio, never their labels), `joint_ood_s<seed>`, with `unlabeled_ood` in place of
  `unlabeled` there (the held-out voices' audio and the labeled subset's only), and
  `joint_mix_s<seed>`, with both, `unlabeled_ood` repeated to weigh about as much audio as
  `unlabeled` (named seven times on `lowres`: about half the stream's audio from the held-out voices).

CER and WER in %; valid is fairseq's letter error rate (word boundaries counted) of the selected
checkpoint; ΔCER is an arm's CER minus its control's (same seed; a PL arm has the control's start and
updates, a CSL, CE-PL, wav2vec 2.0, HuBERT or joint run starts from scratch with the baseline's plus the control's updates),
over all its seeds, with a paired bootstrap 95% interval that resamples the test utterances (each
one's errors summed over the seeds) and the difference relative to the controls' CER. That
interval holds the test set's sampling noise, not the training seeds': those are in the min-max
columns and in each seed's own ΔCER (the last two columns);
PL CER is the pseudo-labels' CER against the kept-aside transcripts at the last logged interval;
"unlabeled h labeled" is how much of the unlabeled audio the run labeled at least once; "wall min"
is the wall-clock time of the run's launches, from its log's timestamps (the runs whose logs went
with an earlier machine keep fairseq's wall meter, which after a resume holds the first launch only).

Reproduce (stages are resumable; finished ones are skipped):

    {command}

Every figure derives from the files in [`{store}/`]({store}/) (per-utterance hypotheses,
validation curves, per-run facts); this page and its plots are rebuilt from them by the
runner's last stage.  Stage 3 also keeps each seed's best baseline there (`init.pt`: its
selected weights, model only, fp16), so that stages 4-10 can start from it on a machine that
does not have the runs (`exp/`); there, a run whose figures are kept here is not trained again.

## Arms against their controls

{summary}

## Every run

{table}
"""


def _scored(path: Path) -> Dict[int, Tuple[float, List[float]]]:
    """Per utterance id of a fairseq-generate log: the best path's score (H line) and the
    positional scores of its tokens (P line)."""
    out: Dict[int, Tuple[float, List[float]]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, _, rest = line.partition("\t")
        if key.startswith("H-"):
            out[int(key[2:])] = (float(rest.split("\t")[0]), out.get(int(key[2:]), (0.0, []))[1])
        elif key.startswith("P-"):
            out[int(key[2:])] = (out.get(int(key[2:]), (0.0, []))[0], [float(x) for x in rest.split()])
    return out


def _corpus_utterances(data: Path, split: str) -> Dict[str, dict]:
    """corpus.json's utterances of ``split`` by id (none where the corpus has no such file)."""
    corpus = data / "corpus.json"
    if not corpus.exists():
        return {}
    return {u["id"]: u for u in json.loads(corpus.read_text())["utterances"] if u.get("split") == split}


def _voices(meta: Dict[str, dict], rows) -> List[str]:
    """The voice ("voice variant", from ``_corpus_utterances``) of each manifest row, "?" where unknown."""
    voices = []
    for row in rows:
        u = meta.get(Path(row[1]).stem)
        voices.append(f"{u.get('voice', '?')} {u.get('variant', '')}".strip() if u else "?")
    return voices


def by_voice(store: Path, data: Path, split: str, names: Sequence[str]) -> str:
    """CER per voice of ``split`` (corpus.json's voice and variant) of each named run, from the
    store's decodes (markdown).  A name without ``_s<seed>`` pools that arm's seeds in the store
    (errors summed over them)."""
    runs = _runs(store)
    refs = (store / "refs" / f"{split}.txt").read_text().splitlines()
    _, rows = read_manifest(str(data / f"{split}.tsv"))
    if len(rows) != len(refs):
        raise SystemExit(f"error: {data}/{split}.tsv has {len(rows)} utterances, the store's references "
                         f"{len(refs)}: give the corpus the runs were decoded on (--data)")
    meta = _corpus_utterances(data, split)
    for n, (row, ref) in enumerate(zip(rows, refs), start=1):
        text = meta.get(Path(row[1]).stem, {}).get("text")
        if text is not None and text != ref:
            raise SystemExit(f"error: {data}/{split}.tsv row {n} ({row[1]}) is '{text}' in corpus.json, the "
                             f"store's reference line {n} '{ref}': give the corpus the runs were decoded on (--data)")
    voices = _voices(meta, rows)
    cols = []
    for name in names:
        seeds = [r for r in runs if r == name or arm_of(r)[0] == name]
        if not seeds:
            raise SystemExit(f"error: no run '{name}' in {store} (names as in the page's table, e.g. "
                             f"labeled_10min/control_s1, or labeled_10min/control for all its seeds)")
        missing = [r for r in seeds if not (runs[r] / f"{split}.hyp").exists()]
        if missing:
            raise SystemExit(f"error: {store}/{missing[0]} has no {split}.hyp: decode {split} "
                             f"(the runner's --decode-splits) and rebuild the page (stage 11)")
        errs = [_errors(store, runs[r], split) for r in seeds]
        label = name if name in runs else f"{name} ({len(seeds)} seed{'s' if len(seeds) > 1 else ''})"
        cols.append((label, sum(e["char_errors"] for e in errs), sum(e["char_total"] for e in errs)))

    def cer(err, tot, keep) -> str:
        return f"{100.0 * err[keep].sum() / max(tot[keep].sum(), 1):.2f}"

    voice = np.array(voices)
    lines = [f"| voice ({split}) | utterances | " + " | ".join(c[0] for c in cols) + " |",
             "|---|---|" + "---|" * len(cols)]
    for v in sorted(set(voices)) + ["all"]:
        keep = voice == v if v != "all" else np.ones(len(voices), bool)
        lines.append(f"| {v} | {int(keep.sum())} | " + " | ".join(cer(e, t, keep) for _, e, t in cols) + " |")
    return "\n".join(lines) + "\n"


def label_quality(generate: Path, data: Path, split: str) -> str:
    """How good a model's greedy labels of ``split`` are, and whether a confidence says which are
    good (markdown): CER and length against the kept-aside transcripts; for two confidences
    (the mean log-prob of the hypothesis's tokens, and the best path's log-prob per second of
    audio) their Spearman correlation with the utterances' accuracy (1 - CER) and the CER of the
    labels kept when only the most confident 25 / 50 / 75 % are kept; the CER per voice of the
    corpus (corpus.json)."""
    from sslasr_plugin.decoding.report import read_generate_output, utterance_errors

    pairs = read_generate_output(str(generate))
    scored = _scored(generate)
    ids = sorted(scored)
    if len(ids) != len(pairs):
        raise SystemExit(f"error: {generate} has {len(pairs)} decoded utterances but {len(ids)} scored ones")
    _, rows = read_manifest(str(data / f"{split}.tsv"))
    if len(rows) != len(ids):
        raise SystemExit(f"error: {generate} has {len(ids)} utterances, {data}/{split}.tsv {len(rows)}: "
                         f"decode the whole split (fairseq-generate --gen-subset {split})")
    e = utterance_errors(pairs)
    err, ref = e["char_errors"].astype(float), np.maximum(e["char_total"], 1).astype(float)
    seconds = np.array([rows[i][2] / SAMPLE_RATE for i in ids])
    hyp_letters = sum(len(h) for _, h in pairs)

    def cer(k) -> float:
        return 100.0 * err[k].sum() / ref[k].sum()

    def ranks(x):  # ties share their mean rank (Spearman's rule)
        x = np.asarray(x, dtype=float)
        values, inverse = np.unique(x, return_inverse=True)
        first = np.searchsorted(np.sort(x), values)
        counts = np.bincount(inverse)
        return (first + (counts - 1) / 2.0)[inverse]

    lines = [f"{split}: {len(ids)} utterances, label CER {cer(slice(None)):.2f}, "
             f"{hyp_letters / ref.sum():.3f} characters (spaces included) per reference character", "",
             "| confidence | Spearman with 1 - CER | CER of the top 25% | top 50% | top 75% | all |",
             "|---|---|---|---|---|---|"]
    confidences = {
        "mean token log-prob": np.array([np.mean(scored[i][1]) if scored[i][1] else -np.inf for i in ids]),
        "path log-prob per second": np.array([scored[i][0] for i in ids]) / seconds,
    }
    for name, conf in confidences.items():
        rho = float(np.corrcoef(ranks(conf), ranks(-err / ref))[0, 1])
        order = np.argsort(-conf, kind="stable")
        tops = [f"{cer(order[: max(1, int(round(f * len(ids))))]):.2f}" for f in (0.25, 0.5, 0.75, 1.0)]
        lines.append(f"| {name} | {rho:.2f} | " + " | ".join(tops) + " |")
    voices: Dict[str, List[int]] = {}
    for j, v in enumerate(_voices(_corpus_utterances(data, split), [rows[i] for i in ids])):
        voices.setdefault(v, []).append(j)
    if len(voices) > 1:
        lines += ["", "| voice | utterances | label CER |", "|---|---|---|"]
        lines += [f"| {v} | {len(js)} | {cer(js):.2f} |" for v, js in sorted(voices.items(), key=lambda x: cer(x[1]))]
    return "\n".join(lines) + "\n"


def _transcripts(data: Path, split: str, n: int) -> List[str]:
    """The .ltr lines of ``split``, refused unless there is one per manifest row."""
    path = data / f"{split}.ltr"
    if not path.exists():
        raise SystemExit(f"error: {path} does not exist: the true transcripts of {split} are needed "
                         "(build the corpus with data_prep.corpus)")
    lines = path.read_text(encoding="utf-8").splitlines()
    if len(lines) != n:
        raise SystemExit(f"error: {path} has {len(lines)} lines, {data}/{split}.tsv {n} rows: rebuild the corpus")
    return lines


def labels_file(generate: Path, data: Path, split: str, ext: str, truth_percent: int = 0, seed: int = 0) -> Path:
    """A model's greedy labels of ``split`` (fairseq-generate's log of the whole split) written as
    fixed pseudo-labels ``{data}/{split}.{ext}``, one line per manifest row spelled as the .ltr
    transcripts, for slimIPL's ``task.pl_decoder=file task.pl_labels=<ext>``.  With
    ``truth_percent`` > 0, that share of the rows (drawn with ``seed``) gets its true transcript
    ({split}.ltr) in place of the model's label: labels of a better teacher with the same kind of
    errors, a measurement of how good labels must be, not an arm.  An existing file is left as it
    is when it holds the same labels and refused otherwise."""
    from sslasr_plugin.decoding.report import read_generate_output

    if not 0 <= truth_percent <= 100:
        raise SystemExit(f"error: the share of true transcripts is {truth_percent}%: give 0 to 100")
    pairs = read_generate_output(str(generate))  # in utterance-id order
    _, rows = read_manifest(str(data / f"{split}.tsv"))
    if sorted(_scored(generate)) != list(range(len(rows))) or len(pairs) != len(rows):
        raise SystemExit(f"error: {generate} has {len(pairs)} decoded utterances, {data}/{split}.tsv {len(rows)}: "
                         f"decode the whole split (fairseq-generate --gen-subset {split})")
    lines = [letters(hyp) for _, hyp in pairs]
    if truth_percent:
        truth = _transcripts(data, split, len(rows))
        for i in np.random.default_rng(seed).permutation(len(rows))[: round(len(rows) * truth_percent / 100)]:
            lines[i] = truth[i]
    text = "".join(line + "\n" for line in lines)
    out = data / f"{split}.{ext}"
    if out.exists():
        if out.read_text(encoding="utf-8") != text:
            raise SystemExit(f"error: {out} exists and holds other labels than {generate}'s: remove it or "
                             "choose another extension")
        return out
    tmp = out.with_name(out.name + ".partial")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out


def labels_cer(data: Path, split: str, ext: str) -> str:
    """How far a file of fixed pseudo-labels ``{split}.{ext}`` is from the true transcripts
    ``{split}.ltr`` (markdown, a line): its CER, and how many of its lines are the transcript."""
    from fairseq.data.data_utils import post_process

    from sslasr_plugin.decoding.report import utterance_errors

    _, rows = read_manifest(str(data / f"{split}.tsv"))
    truth = _transcripts(data, split, len(rows))
    path = data / f"{split}.{ext}"
    labels = path.read_text(encoding="utf-8").splitlines() if path.exists() else None
    if labels is None or len(labels) != len(rows):
        raise SystemExit(f"error: {path} is missing or has not one line per row of {data}/{split}.tsv: "
                         "write it with labels-file")
    e = utterance_errors([(post_process(t, "letter"), post_process(h, "letter")) for t, h in zip(truth, labels)])
    same = sum(t == h for t, h in zip(truth, labels))
    return (f"{path.name}: {len(rows)} utterances, label CER {_rate(e, 'char'):.2f}, "
            f"{same} ({100.0 * same / max(len(rows), 1):.0f}%) equal to their true transcript\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("oracle-manifest")
    p.add_argument("--data", type=Path, required=True)
    p = sub.add_parser("combine", help="one split made of others (the same audio root)")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--name", required=True)
    p.add_argument("parts", nargs="+")
    p = sub.add_parser("weighed-subsets", help="two subsets as an unlabeled_subsets list, the small one repeated to weigh as much")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("big")
    p.add_argument("small")
    p = sub.add_parser("best")
    p.add_argument("--exp", type=Path, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--store", type=Path, help="the page's store: sweep runs of other machines, by their curves")
    p.add_argument("points", nargs="+")
    p = sub.add_parser("check-budget", help="refuse to resume a run under another update budget")
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--max-update", type=int, required=True)
    p = sub.add_parser("check-point", help="refuse a run that started from another baseline sweep point")
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--store-run", type=Path, required=True, help="the run's folder in the page's store")
    p.add_argument("--point", required=True)
    p.add_argument("--sweep", default="", help="the sweep the point was chosen from (for the message)")
    p = sub.add_parser("same-classes", help="refuse frame labels in other classes than stage 9's")
    p.add_argument("labels", type=Path)
    p.add_argument("classes", type=Path)
    p = sub.add_parser("frame-agreement", help="a teacher's frame labels against reference labels in its classes")
    p.add_argument("labels", type=Path)
    p.add_argument("reference", type=Path)
    p = sub.add_parser("carry")
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--to", type=Path, required=True)
    p = sub.add_parser("label-quality", help="a model's labels of a split against its transcripts")
    p.add_argument("--generate", type=Path, required=True, help="fairseq-generate's generate-<split>.txt")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--split", required=True)
    p = sub.add_parser("labels-file", help="a model's labels of a split as fixed pseudo-labels {split}.{ext}")
    p.add_argument("--generate", type=Path, required=True, help="fairseq-generate's generate-<split>.txt")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--split", required=True)
    p.add_argument("--ext", required=True, help="the labels' extension (task.pl_labels), e.g. joint_ood_s1.ltr")
    p.add_argument("--truth-percent", type=int, default=0,
                   help="this share of the rows gets its true transcript instead (a measurement, not an arm)")
    p.add_argument("--seed", type=int, default=0, help="draws the rows of --truth-percent")
    p = sub.add_parser("labels-cer", help="a file of fixed pseudo-labels against the split's true transcripts")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--split", required=True)
    p.add_argument("--ext", required=True)
    p = sub.add_parser("by-voice", help="CER per voice of a split, per run, from the page's store")
    p.add_argument("--store", type=Path, default=Path("docs/results/lowres"))
    p.add_argument("--data", type=Path, default=Path("data/lowres"))
    p.add_argument("--split", default="test_ood")
    p.add_argument("runs", nargs="+", help="store names (labeled_10min/control_s1; labeled_10min/control: all seeds)")
    p = sub.add_parser("rebuild")
    p.add_argument("--exp", type=Path, required=True)
    p.add_argument("--page", type=Path, required=True)
    p.add_argument("--command", default="PATH=$PWD/.venv/bin:$PATH bash examples/lowres/run.sh --stage 0 --stop-stage 11")
    args = parser.parse_args(argv)
    # fairseq's import sets the root logger to DEBUG; matplotlib (imported by fairseq's modules or
    # by the plots) would print its debug lines.
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    if args.cmd == "oracle-manifest":
        combine(args.data, "oracle", ORACLE_PARTS)
    elif args.cmd == "combine":
        combine(args.data, args.name, args.parts)
    elif args.cmd == "weighed-subsets":
        print(weighed_subsets(args.data, args.big, args.small))
    elif args.cmd == "best":
        print(best_point(args.exp, args.seed, args.points, args.store))
    elif args.cmd == "carry":
        carry(args.run, args.to)
    elif args.cmd == "check-point":
        check_point(args.run, args.store_run, args.point, args.sweep)
    elif args.cmd == "same-classes":
        same_classes(args.labels, args.classes)
    elif args.cmd == "frame-agreement":
        print(json.dumps(frame_agreement(args.labels, args.reference), indent=1))
    elif args.cmd == "check-budget":
        check_budget(args.run, args.max_update)
    elif args.cmd == "label-quality":
        print(label_quality(args.generate, args.data, args.split), end="")
    elif args.cmd == "labels-file":
        print(labels_file(args.generate, args.data, args.split, args.ext, args.truth_percent, args.seed))
    elif args.cmd == "labels-cer":
        print(labels_cer(args.data, args.split, args.ext), end="")
    elif args.cmd == "by-voice":
        print(by_voice(args.store, args.data, args.split, args.runs), end="")
    else:
        store = args.page.with_suffix("")
        collect(args.exp, store)
        render(store, args.page, args.command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
