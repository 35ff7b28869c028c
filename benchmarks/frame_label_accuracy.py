"""How often a teacher's frame labels agree with the forced alignment of the true transcript.

    python benchmarks/frame_label_accuracy.py --labels exp/lowres/labeled_10min/frame_pl_s1 \
        --reference exp/lowres/labeled_10min/align_study/units_with_unlabeled --split unlabeled

--labels: an output directory of data_prep.pseudo_labels ({split}.plab, a class per frame);
--reference: an output directory of data_prep.align run on the same split with its true
transcripts ({split}.unit), tied into the same classes (the same aligner, --classes and
--min-frames fitted on the same first split: the tying is deterministic, and the class lists
must match).  Prints the share of frames whose class agrees, of frames whose letter agrees (a
class's letter is its name before the last '_'), the same without the '|' (silence and word
boundary) frames of the reference, and how many classes each side uses.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

from data_prep.units import SEPARATOR, class_letter


def read_rows(path: Path):
    return [line.split() for line in path.read_text().splitlines()]


def agreement(labels, reference):
    """Frame, letter and non-'|' agreements (shares of frames) of two lists of per-frame rows."""
    frames = same = same_letter = inner = inner_same = 0
    for n, (hyp, ref) in enumerate(zip(labels, reference)):
        if len(hyp) != len(ref):
            raise ValueError(f"utterance {n + 1}: {len(hyp)} labelled frames against {len(ref)} aligned")
        letters_hyp = np.array([class_letter(x) for x in hyp], dtype=object)
        letters_ref = np.array([class_letter(x) for x in ref], dtype=object)
        hyp, ref = np.array(hyp, dtype=object), np.array(ref, dtype=object)
        keep = letters_ref != SEPARATOR
        frames += len(ref)
        same += int((hyp == ref).sum())
        same_letter += int((letters_hyp == letters_ref).sum())
        inner += int(keep.sum())
        inner_same += int((hyp[keep] == ref[keep]).sum())
    return {"frames": frames, "class": same / max(frames, 1), "letter": same_letter / max(frames, 1),
            "class_without_separator": inner_same / max(inner, 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labels", required=True, type=Path, help="an output directory of data_prep.pseudo_labels")
    parser.add_argument("--reference", required=True, type=Path, help="an output directory of data_prep.align")
    parser.add_argument("--split", default="unlabeled")
    args = parser.parse_args(argv)
    classes = [(args.labels / "dict.plab.txt"), (args.reference / "dict.unit.txt")]
    names = [[line.split()[0] for line in path.read_text().splitlines()] for path in classes]
    if names[0] != names[1]:
        print(f"error: {classes[0]} and {classes[1]} list other classes: tie the reference with the teacher's "
              "aligner, --classes and --min-frames, fitted on the same first split", file=sys.stderr)
        return 2
    hyp_path, ref_path = args.labels / f"{args.split}.plab", args.reference / f"{args.split}.unit"
    labels, reference = read_rows(hyp_path), read_rows(ref_path)
    if len(labels) != len(reference):
        print(f"error: {hyp_path} has {len(labels)} utterances, {ref_path} {len(reference)}", file=sys.stderr)
        return 2
    try:
        rates = agreement(labels, reference)
    except ValueError as err:
        print(f"error: {hyp_path} against {ref_path}: {err}", file=sys.stderr)
        return 2
    used = [len({x for row in rows for x in row}) for rows in (labels, reference)]
    print(f"{args.split}: {len(labels)} utterances, {rates['frames']} frames, {len(names[0])} classes "
          f"({used[0]} used by the labels, {used[1]} by the reference)")
    print("| frames agreeing on | share |\n|---|---|")
    print(f"| class | {rates['class']:.3f} |\n| letter (class's letter) | {rates['letter']:.3f} |\n"
          f"| class, frames whose reference is not '{SEPARATOR}' | {rates['class_without_separator']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
