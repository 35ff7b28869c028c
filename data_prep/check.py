"""Check a fairseq audio data directory row by row, and optionally write a copy without the bad rows.

    python -m data_prep.check --data data/demo --labels ltr
    python -m data_prep.check --data data/mine --labels ltr wrd --read-audio --skip-bad data/mine_clean

Each problem (manifest rows, audio, label files, frame-label counts) is printed with its file,
line and fix; the training tasks run the same checks before their first update.  Exit status:
0 clean (or cleaned copy written), 1 problems found, 2 problems no row-dropping can fix.
What is checked, and --skip-bad's output: docs/design.md, "Data checks".
"""
import argparse
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from sslasr_data.validate import (
    FRAME_LABEL_TOLERANCE, DataError, audio_header_problem, frame_label_problem,
)


@dataclass
class Problem:
    file: str
    line: int  # 0: the whole file
    message: str
    row: Optional[int] = None  # index of the manifest row it drops, None: the whole split

    def __str__(self):
        return f"{self.file} line {self.line}: {self.message}" if self.line else f"{self.file}: {self.message}"


@dataclass
class SplitReport:
    root: str
    rows: List[tuple]  # (manifest line, relative path, samples), well-formed rows only
    problems: List[Problem]
    labels: Dict[str, List[str]]  # label file -> its lines (rows of the manifest, in order)

    @property
    def fatal(self) -> List[Problem]:
        return [p for p in self.problems if p.row is None]


def _read_audio_problem(path: str, samples: int) -> Optional[str]:
    import soundfile

    import numpy as np

    try:
        audio = soundfile.read(path, dtype="float32")[0]
    except Exception as e:
        return f"{path} has a readable header but its samples do not decode ({str(e).strip()}); re-create the file"
    decoded = len(audio)
    bad = np.flatnonzero(~np.isfinite(audio))
    if len(bad):  # float WAV/FLAC can hold NaN/Inf: every loss of its batch would be non-finite
        return (f"{path} holds {len(bad)} non-finite samples (NaN/Inf; the first at sample {int(bad[0])}): "
                "re-create the file or remove its row")
    if decoded != samples:
        return (f"{path} decodes to {decoded} samples but its header and the manifest say {samples}: the file is "
                "truncated or corrupt; re-create it or remove its row")
    return None


def _load_dictionary(path: Path):
    if not path.is_file():
        return None
    from fairseq.data import Dictionary

    return Dictionary.load(str(path))


def check_split(data: Path, split: str, labels: Sequence[str] = (), label_dir: Optional[Path] = None,
                frame_labels: Sequence[str] = (), label_rate: float = 0, sample_rate: int = 16000,
                read_audio: bool = False, tolerance: int = FRAME_LABEL_TOLERANCE) -> SplitReport:
    tsv = data / f"{split}.tsv"
    if not tsv.is_file():
        raise DataError(f"{tsv}: manifest not found; --splits names {{split}}.tsv files in --data")
    lines = tsv.read_text(encoding="utf-8").splitlines()
    if not lines:
        raise DataError(f"{tsv}: empty manifest; its first line must be the audio root directory")
    root, rows, problems = lines[0], [], []
    for lineno, line in enumerate(lines[1:], start=2):
        parts = line.split("\t")
        row = len(rows)
        rows.append((lineno, parts[0], int(parts[1]) if len(parts) == 2 and parts[1].strip().isdigit() else -1))
        if rows[-1][2] < 0:
            problems.append(Problem(str(tsv), lineno, f"expected '<relative path><TAB><number of samples>', "
                                    f"found {line!r}; fix or remove the row", row))
            continue
        path = os.path.join(root, parts[0])
        if not os.path.isfile(path):
            problem = f"{path} not found; fix the root directory on line 1 or remove the row"
        elif rows[-1][2] == 0:
            problem = f"{parts[0]} has 0 samples; remove zero-length audio from the manifest"
        else:
            problem = audio_header_problem(path, rows[-1][2], sample_rate)
            if problem is None and read_audio:
                problem = _read_audio_problem(path, rows[-1][2])
        if problem:
            problems.append(Problem(str(tsv), lineno, problem, row))

    label_files = {}
    sources = [(data / f"{split}.{ext}", _load_dictionary(data / f"dict.{ext}.txt"), False) for ext in labels]
    sources += [(label_dir / f"{split}.{ext}", _load_dictionary(label_dir / f"dict.{ext}.txt"), True)
                for ext in frame_labels]
    for path, dictionary, per_frame in sources:
        frame_problems, rates = [], []
        if not path.is_file():
            problems.append(Problem(str(path), 0, f"label file not found; it must hold one line per row of {tsv}"))
            continue
        text = path.read_text(encoding="utf-8").splitlines()
        label_files[str(path)] = text
        if len(text) != len(rows):
            problems.append(Problem(str(path), 0, f"{len(text)} lines but {tsv.name} lists {len(rows)} "
                                    "files; they must match line by line (no row can be dropped safely)"))
            continue
        for row, (label, (tsv_line, rel, samples)) in enumerate(zip(text, rows)):
            lineno = row + 1
            if not label.strip():
                problems.append(Problem(str(path), lineno, f"empty {'labels' if per_frame else 'transcript'} for "
                                        f"{rel}; remove the row from {path.name} and {tsv.name}", row))
                continue
            if dictionary is not None:
                unknown = sorted({s for s in label.split() if dictionary.index(s) == dictionary.unk()})
                if unknown:
                    problems.append(Problem(str(path), lineno, f"symbols missing from dict.{path.suffix[1:]}.txt: "
                                            f"{' '.join(unknown)}; add them or normalize the text", row))
                    continue
            if per_frame and samples > 0:
                problem = frame_label_problem(len(label.split()), rel, samples, tsv_line, tsv.name, label_rate,
                                              sample_rate, tolerance)
                if problem:
                    frame_problems.append(Problem(str(path), lineno, problem, row))
                    rates.append(len(label.split()) * sample_rate / samples)
        if len(frame_problems) > len(rows) / 2:  # the rate, not some rows, is wrong: dropping rows is no fix
            rate = sorted(rates)[len(rates) // 2]
            problems.append(Problem(str(path), 0, f"{len(frame_problems)} of {len(rows)} lines do not fit "
                                    f"{label_rate:g} labels/s; the labels come at ~{rate:.1f}/s: pass --label-rate "
                                    f"{round(rate / 10) * 10:g} (task.label_rate), or dump the labels again"))
        else:
            problems += frame_problems
    return SplitReport(root, rows, problems, label_files)


def write_clean(report: SplitReport, data: Path, split: str, out: Path) -> int:
    """The split without its bad rows into ``out``; returns the number of rows dropped."""
    bad = {p.row for p in report.problems}
    keep = [i for i in range(len(report.rows)) if i not in bad]
    lines = (data / f"{split}.tsv").read_text(encoding="utf-8").splitlines()
    (out / f"{split}.tsv").write_text("\n".join([report.root] + [lines[report.rows[i][0] - 1] for i in keep]) + "\n",
                                      encoding="utf-8")
    for path, text in report.labels.items():
        (out / Path(path).name).write_text("".join(text[i] + "\n" for i in keep), encoding="utf-8")
        for dict_file in Path(path).parent.glob("dict.*.txt"):
            if not (out / dict_file.name).exists():
                shutil.copyfile(dict_file, out / dict_file.name)
    with open(out / "skipped.txt", "a", encoding="utf-8") as f:
        for p in sorted(report.problems, key=lambda p: p.row):
            f.write(f"{split}\t{p.file}\t{p.line}\t{p.message}\n")
    return len(bad)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="directory with {split}.tsv manifests (and transcripts)")
    parser.add_argument("--splits", nargs="+", help="splits to check (default: every .tsv in --data)")
    parser.add_argument("--labels", nargs="*", default=[], help="transcript extensions beside the manifests, e.g. ltr")
    parser.add_argument("--label-dir", help="directory of frame labels (HuBERT k-means, CSL pseudo-labels)")
    parser.add_argument("--frame-labels", nargs="*", default=[], help="frame label extensions in --label-dir, e.g. km")
    parser.add_argument("--label-rate", type=float, default=0, help="frame labels per second (labels.json says)")
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--read-audio", action="store_true", help="decode every file, not only its header")
    parser.add_argument("--skip-bad", metavar="OUT", help="write the data without the bad rows into OUT")
    parser.add_argument("--overwrite", action="store_true", help="let --skip-bad replace what OUT holds")
    args = parser.parse_args(argv)
    data = Path(args.data)
    if args.frame_labels and (not args.label_dir or args.label_rate <= 0):
        parser.error("--frame-labels needs --label-dir and --label-rate")
    splits = args.splits or sorted(p.stem for p in data.glob("*.tsv"))
    out = Path(args.skip_bad) if args.skip_bad else None
    if out is not None:
        if out.resolve() == data.resolve() or (args.label_dir and out.resolve() == Path(args.label_dir).resolve()):
            parser.error("--skip-bad must name a new directory: the input is never modified")
        if out.exists() and any(out.iterdir()) and not args.overwrite:
            print(f"error: {out} is not empty; choose another directory or pass --overwrite", file=sys.stderr)
            return 2
        out.mkdir(parents=True, exist_ok=True)
        (out / "skipped.txt").write_text("split\tfile\tline\tproblem\n", encoding="utf-8")
    status = 0
    for split in splits:
        try:
            report = check_split(data, split, args.labels, Path(args.label_dir) if args.label_dir else None,
                                 args.frame_labels, args.label_rate, args.sample_rate, args.read_audio)
        except DataError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        for problem in report.problems:
            print(problem)
        bad_rows = len({p.row for p in report.problems if p.row is not None})
        print(f"{split}: {len(report.rows)} rows, {len(report.problems)} problem(s) in {bad_rows} row(s)"
              + (f", {len(report.fatal)} that dropping rows cannot fix" if report.fatal else ""))
        if report.fatal:
            status = 2
        elif report.problems:
            if out is not None:
                print(f"{split}: wrote {out / split}.tsv without {write_clean(report, data, split, out)} row(s)")
            else:
                status = max(status, 1)
        elif out is not None:
            write_clean(report, data, split, out)
    if out is not None and status < 2:
        print(f"skipped rows are listed in {out / 'skipped.txt'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
