"""Word boundaries of data_prep.align's segments against espeak-ng's own timings.

    python benchmarks/alignment_boundaries.py --corpus data/demo --split labeled \
        --alignments data/demo_units data/demo_units_spike

For each utterance of --split in each alignment directory ({split}.ali), a word starts at the
first frame of its first letter's segment and ends at the first frame after its last letter's
segment (frame f is at f / label_rate seconds).  The reference is where espeak-ng, synthesizing
the same utterance again (data_prep.espeak_timing), starts the word's first phoneme and ends its
last.  Prints per alignment the mean absolute error of word starts and ends in ms, the mean
signed error (positive: the segment boundary comes late), and the share within 20 / 40 ms;
utterances in which espeak-ng reports another number of words than the transcript holds (it
fuses some short words) are left out and counted.
"""
import argparse
import json
from pathlib import Path

import numpy as np

from data_prep.align import parse_ali
from data_prep.espeak_timing import word_times
from data_prep.units import SEPARATOR


def segment_words(tokens, starts, frames):
    """(first frame, end frame) of each word: runs of tokens between '|' segments."""
    ends = list(starts[1:]) + [frames]
    words, current = [], None
    for token, a, b in zip(tokens, starts, ends):
        if token == SEPARATOR:
            current = None
        elif current is None:
            current = [a, b]
            words.append(current)
        else:
            current[1] = b
    return words


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", required=True, help="a data_prep.corpus directory (with corpus.json)")
    parser.add_argument("--split", default="labeled")
    parser.add_argument("--alignments", nargs="+", required=True, help="output directories of data_prep.align")
    parser.add_argument("--label-rate", type=float, default=50.0, help="encoder frames per second")
    args = parser.parse_args()
    corpus = Path(args.corpus)
    plan = {u["relpath"] if "relpath" in u else f"wav/{u['split']}/{u['id']}.wav": u
            for u in json.loads((corpus / "corpus.json").read_text())["utterances"]}
    rows = [line.split("\t") for line in (corpus / f"{args.split}.tsv").read_text().splitlines()[1:]]
    alis = {d: (Path(d) / f"{args.split}.ali").read_text().splitlines() for d in args.alignments}
    count = min(len(lines) for lines in alis.values())
    errors = {d: ([], []) for d in alis}
    skipped = 0
    for n in range(count):
        relpath, samples = rows[n]
        utt = plan[relpath]
        reference = word_times(utt["text"], f"{utt['voice']}+{utt['variant']}", utt["rate"], utt["pitch"], int(samples))
        parsed = {d: parse_ali(lines[n], f"{d}/{args.split}.ali:{n + 1}") for d, lines in alis.items()}
        words = {d: segment_words(tokens, starts, frames) for d, (frames, tokens, starts) in parsed.items()}
        if any(len(w) != len(reference) for w in words.values()):
            skipped += 1
            continue
        for d, spans in words.items():
            for (a, b), (ref_a, ref_b) in zip(spans, reference):
                errors[d][0].append(a / args.label_rate - ref_a)
                errors[d][1].append(b / args.label_rate - ref_b)
    used = count - skipped
    print(f"{args.split}: {used} utterances compared, {skipped} left out (espeak-ng fused words), "
          f"{len(errors[args.alignments[0]][0])} words")
    print("| alignment | boundary | mean abs error ms | mean signed error ms | within 20 ms | within 40 ms |")
    print("|---|---|---|---|---|---|")
    for d, (starts, ends) in errors.items():
        for name, e in (("word start", starts), ("word end", ends)):
            e = np.abs(np.array(e)) * 1000
            signed = np.mean(starts if name == "word start" else ends) * 1000
            print(f"| {d} | {name} | {e.mean():.1f} | {signed:+.1f} | {np.mean(e <= 20):.2f} | {np.mean(e <= 40):.2f} |")


if __name__ == "__main__":
    main()
