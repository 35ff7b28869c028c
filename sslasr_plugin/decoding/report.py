"""WER/CER table from fairseq-generate outputs.

    python -m sslasr_plugin.decoding.report test=exp/decode_test/generate-test.txt \
        test_ood=exp/decode_test_ood/generate-test_ood.txt
    python -m sslasr_plugin.decoding.report --against base joint/test=... base/test=...

Reads the T- (reference) and D- (detokenized hypothesis) lines that fairseq-generate writes
with ``--post-process letter`` and prints one markdown row per file.  With ``--against SYSTEM``,
rows are named ``system/subset`` and each row gets its CER and WER difference from
``SYSTEM/subset`` (the same utterances), with a paired bootstrap 95% interval.
"""
import sys
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import editdistance
import numpy as np


def read_generate_output(path: str) -> List[Tuple[str, str]]:
    """(reference, hypothesis) pairs of a fairseq-generate log, in utterance-id order."""
    refs: Dict[int, str] = {}
    hyps: Dict[int, str] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if line.startswith("T-"):
                refs[int(fields[0][2:])] = fields[1] if len(fields) > 1 else ""
            elif line.startswith("D-"):
                hyps[int(fields[0][2:])] = fields[2] if len(fields) > 2 else ""
    missing = sorted(set(refs) ^ set(hyps))
    if missing:
        raise ValueError(f"{path}: utterances {missing[:5]} have a reference or a hypothesis but not both")
    return [(refs[i], hyps[i]) for i in sorted(refs)]


def error_rates(pairs: Sequence[Tuple[str, str]], errors: Dict[str, np.ndarray] = None) -> Dict[str, float]:
    """Corpus-level WER and CER in percent (edit distance over total reference length), from
    :func:`utterance_errors` (``errors``, when already counted)."""
    e = utterance_errors(pairs) if errors is None else errors
    words = int(e["word_total"].sum())
    return {
        "utterances": len(pairs),
        "words": words,
        "wer": 100.0 * int(e["word_errors"].sum()) / max(words, 1),
        "cer": 100.0 * int(e["char_errors"].sum()) / max(int(e["char_total"].sum()), 1),
    }


def read_hypotheses(path: Path) -> List[str]:
    """One hypothesis per line, as `examples/lowres/local.py` stores them beside a results page."""
    return Path(path).read_text(encoding="utf-8").split("\n")[:-1]


def utterance_errors(pairs: Sequence[Tuple[str, str]]) -> Dict[str, np.ndarray]:
    """Per-utterance character and word edit counts and reference lengths (for paired statistics)."""
    return {
        "char_errors": np.array([editdistance.eval(ref, hyp) for ref, hyp in pairs], dtype=np.int64),
        "char_total": np.array([len(ref) for ref, _ in pairs], dtype=np.int64),
        "word_errors": np.array([editdistance.eval(ref.split(), hyp.split()) for ref, hyp in pairs], dtype=np.int64),
        "word_total": np.array([len(ref.split()) for ref, _ in pairs], dtype=np.int64),
    }


def paired_bootstrap(errors_a, errors_b, totals, samples: int = 10000, seed: int = 0) -> Tuple[float, float, float]:
    """Error-rate difference A - B in percentage points over the same utterances, and its paired
    bootstrap 95% interval (utterances resampled with replacement, both systems together)."""
    errors_a, errors_b, totals = (np.asarray(x, dtype=np.float64) for x in (errors_a, errors_b, totals))
    if not len(errors_a) == len(errors_b) == len(totals) > 0:
        raise ValueError(f"paired_bootstrap needs equal, non-empty utterance lists, got "
                         f"{len(errors_a)}, {len(errors_b)}, {len(totals)}")
    diff = errors_a - errors_b
    idx = np.random.default_rng(seed).integers(0, len(diff), size=(samples, len(diff)))
    deltas = 100.0 * diff[idx].sum(axis=1) / np.maximum(totals[idx].sum(axis=1), 1)
    lo, hi = np.percentile(deltas, [2.5, 97.5])
    return 100.0 * diff.sum() / max(totals.sum(), 1), float(lo), float(hi)


def _row(name: str, r: Dict[str, float]) -> str:
    return f"| {name} | {r['utterances']} | {r['words']} | {r['wer']:.2f} | {r['cer']:.2f} |"


def markdown_table(results: Dict[str, Dict[str, float]]) -> str:
    lines = ["| subset | utterances | words | WER % | CER % |", "|---|---|---|---|---|"]
    return "\n".join(lines + [_row(name, r) for name, r in results.items()])


def paired_table(outputs: Dict[str, str], against: str) -> str:
    """:func:`markdown_table` of ``outputs`` (row name -> fairseq-generate log), rows named
    ``system/subset``, each with its difference from ``against/subset`` (system minus
    ``against``, percentage points) and the paired bootstrap 95% interval over the subset's
    utterances."""
    pairs = {name: read_generate_output(path) for name, path in outputs.items()}
    errs = {name: utterance_errors(pair) for name, pair in pairs.items()}
    lines = [f"| subset | utterances | words | WER % | CER % | ΔCER vs {against} [95% CI] "
             f"| ΔWER vs {against} [95% CI] |", "|---|---|---|---|---|---|---|"]
    for name, pair in pairs.items():
        system, _, subset = name.rpartition("/")
        base = f"{against}/{subset}"
        if not system:
            raise ValueError(f"row {name!r}: with --against, name the rows system/subset")
        if base not in pairs:
            raise ValueError(f"row {name!r} has nothing to compare with; add {base}=<its fairseq-generate log>")
        cells = ["", ""]
        if name != base:
            if [ref for ref, _ in pair] != [ref for ref, _ in pairs[base]]:
                raise ValueError(f"{outputs[name]} and {outputs[base]} decode different references; a paired "
                                 "comparison needs the same utterances")
            for i, kind in enumerate(("char", "word")):
                d, lo, hi = paired_bootstrap(errs[name][f"{kind}_errors"], errs[base][f"{kind}_errors"],
                                             errs[name][f"{kind}_total"])
                cells[i] = f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]"
        lines.append(_row(name, error_rates(pair, errs[name])) + f" {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    argv = list(argv)
    against = None
    if argv[:1] == ["--against"] and len(argv) > 1:
        against, argv = argv[1], argv[2:]
    if not argv or any("=" not in a for a in argv):
        print(__doc__, file=sys.stderr)
        return 2
    outputs = dict(a.split("=", 1) for a in argv)
    if against is None:
        print(markdown_table({name: error_rates(read_generate_output(path)) for name, path in outputs.items()}))
        return 0
    try:
        print(paired_table(outputs, against))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
