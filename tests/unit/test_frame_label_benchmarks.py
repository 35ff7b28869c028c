"""The frame-label benchmarks on hand-made files whose answers are counted by hand:
benchmarks/lab_coverage.py on a teacher's labels (--labels), benchmarks/frame_label_accuracy.py;
and the files each refuses."""
import re
import sys

from tests.helpers import run_cli


def _split(root, labels, samples=16000):
    """`unlabeled` of len(labels) utterances of `samples` samples each, frame labels as given."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "unlabeled.tsv").write_text("/audio\n" + "".join(f"u{i}.wav\t{samples}\n" for i in range(len(labels))))
    (root / "dict.plab.txt").write_text("".join(f"{c} 1\n" for c in sorted({c for lab in labels for c in lab})))
    (root / "unlabeled.plab").write_text("".join(" ".join(lab) + "\n" for lab in labels))


def _rows(root, *max_tokens):
    proc = run_cli([sys.executable, "benchmarks/lab_coverage.py", "--data", root, "--labels", root,
                    "--split", "unlabeled", "--max-tokens", *max_tokens])
    return [[cell.strip() for cell in row.split("|")[1:-1]] for row in
            re.findall(r"^\| teacher labels .*$", proc.stdout, re.M)]


def test_teacher_labels_pair_coverage_against_hand_counts(tmp_path):
    # four utterances sharing A and B, one of them also holding C (no other utterance has C)
    _split(tmp_path / "a", [["A", "A", "B"], ["B", "A"], ["A", "B", "C"], ["B", "B", "A"]])
    (whole,) = _rows(tmp_path / "a", 64000)  # a batch holds all four: every shared label is paired
    assert whole[1:3] == ["3", "4"]  # classes, batch seconds
    assert abs(float(whole[3]) - 2.25) <= 0.05  # distinct labels per utterance: (2 + 2 + 3 + 2) / 4, to .1
    assert float(whole[4]) == round(8 / 9, 3)  # (utterance, label) pairs another utterance shares: all but C
    # fairseq's batch of all four holds A, B and C; A and B are paired: 2 of 3 (batch, label)
    # occurrences.  (LAB may cut the split otherwise, as long as its batches pair labels.)
    assert float(whole[5]) == round(2 / 3, 3) and 2 / 3 - 1e-3 <= float(whole[6]) <= 1
    one, = _rows(tmp_path / "a", 16000)  # one utterance a batch: no pair at all
    assert float(one[5]) == float(one[6]) == 0.0


def test_labels_that_do_not_cover_the_split_are_refused(tmp_path):
    _split(tmp_path / "b", [["A"], ["A"]])
    with (tmp_path / "b" / "unlabeled.tsv").open("a") as tsv:
        tsv.write("u2.wav\t16000\n")
    proc = run_cli([sys.executable, "benchmarks/lab_coverage.py", "--data", tmp_path / "b", "--labels",
                    tmp_path / "b", "--split", "unlabeled"], check=False)
    assert proc.returncode != 0 and "labels 2 utterances of unlabeled" in proc.stderr and "lists 3" in proc.stderr


def _labels(root, name, rows, classes):
    root.mkdir(parents=True, exist_ok=True)
    (root / f"dict.{name}.txt").write_text("".join(f"{c} 1\n" for c in classes))
    (root / f"unlabeled.{name}").write_text("".join(" ".join(row) + "\n" for row in rows))


def test_frame_label_accuracy_counts_classes_letters_and_non_separator_frames(tmp_path):
    classes = ["A_0", "A_1", "B_0", "|_0"]
    _labels(tmp_path / "ref", "unit", [["|_0", "A_0", "A_0", "B_0"], ["A_1", "|_0"]], classes)
    _labels(tmp_path / "pl", "plab", [["|_0", "A_1", "A_0", "B_0"], ["B_0", "A_0"]], classes)
    proc = run_cli([sys.executable, "benchmarks/frame_label_accuracy.py", "--labels", tmp_path / "pl",
                    "--reference", tmp_path / "ref"])
    shares = dict(re.findall(r"^\| (class|letter)[^|]* \| ([\d.]+) \|", proc.stdout, re.M))
    assert float(shares["class"]) == round(3 / 6, 3)  # frames 1, 3, 4 of the first utterance
    assert float(shares["letter"]) == round(4 / 6, 3)  # and frame 2 (A_1 against A_0)
    assert f"| class, frames whose reference is not '|' | {2 / 4:.3f} |" in proc.stdout
    assert "4 classes (4 used by the labels, 4 by the reference)" in proc.stdout
    # another tying, or another frame count, is refused with the files named
    _labels(tmp_path / "other", "unit", [["A_0"] * 4, ["A_0"] * 2], classes[:3] + ["|_1"])
    proc = run_cli([sys.executable, "benchmarks/frame_label_accuracy.py", "--labels", tmp_path / "pl",
                    "--reference", tmp_path / "other"], check=False)
    assert proc.returncode == 2 and "list other classes" in proc.stderr
    _labels(tmp_path / "short", "unit", [["A_0"] * 3, ["A_0"] * 2], classes)
    proc = run_cli([sys.executable, "benchmarks/frame_label_accuracy.py", "--labels", tmp_path / "pl",
                    "--reference", tmp_path / "short"], check=False)
    assert proc.returncode == 2 and "utterance 1: 4 labelled frames against 3 aligned" in proc.stderr
