"""WER/CER table from fairseq-generate outputs.

    python -m sslasr_plugin.decoding.report test=exp/decode_test/generate-test.txt \
        test_ood=exp/decode_test_ood/generate-test_ood.txt

Reads the T- (reference) and D- (detokenized hypothesis) lines that fairseq-generate writes
with ``--post-process letter`` and prints one markdown row per file.
"""
import sys
from typing import Dict, List, Sequence, Tuple

import editdistance


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


def error_rates(pairs: Sequence[Tuple[str, str]]) -> Dict[str, float]:
    """Corpus-level WER and CER in percent (edit distance over total reference length)."""
    word_err = sum(editdistance.eval(ref.split(), hyp.split()) for ref, hyp in pairs)
    words = sum(len(ref.split()) for ref, _ in pairs)
    char_err = sum(editdistance.eval(ref, hyp) for ref, hyp in pairs)
    chars = sum(len(ref) for ref, _ in pairs)
    return {
        "utterances": len(pairs),
        "words": words,
        "wer": 100.0 * word_err / max(words, 1),
        "cer": 100.0 * char_err / max(chars, 1),
    }


def markdown_table(results: Dict[str, Dict[str, float]]) -> str:
    lines = ["| subset | utterances | words | WER % | CER % |", "|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['utterances']} | {r['words']} | {r['wer']:.2f} | {r['cer']:.2f} |")
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    if not argv or any("=" not in a for a in argv):
        print(__doc__, file=sys.stderr)
        return 2
    results = {name: error_rates(read_generate_output(path)) for name, path in (a.split("=", 1) for a in argv)}
    print(markdown_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
