"""Checks that a fairseq audio manifest and its labels belong together, before training starts.

Every problem is reported with the file, the line and what to do, e.g.
"valid.ltr has 812 lines but valid.tsv lists 813 files".
"""
import os
from pathlib import Path
from typing import List, Optional, Tuple


class DataError(ValueError):
    """A data file is malformed; the message names the file, the line and the fix."""


def read_manifest(tsv_path: str) -> Tuple[str, List[Tuple[int, str, int]]]:
    """Return the root directory and (line number, relative path, samples) of each row."""
    if not os.path.isfile(tsv_path):
        raise DataError(f"{tsv_path}: manifest not found; build it with 'python -m data_prep.corpus' "
                        "or fairseq's wav2vec_manifest.py")
    with open(tsv_path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    if not lines:
        raise DataError(f"{tsv_path}: empty manifest; its first line must be the audio root directory")
    root, rows = lines[0], []
    for lineno, line in enumerate(lines[1:], start=2):
        parts = line.split("\t")
        if len(parts) != 2 or not parts[1].strip().isdigit():
            raise DataError(f"{tsv_path} line {lineno}: expected '<relative path><TAB><number of samples>', "
                            f"found {line!r}")
        rows.append((lineno, parts[0], int(parts[1])))
    return root, rows


def audio_files(tsv_path) -> List[Tuple[Path, int]]:
    """(audio file, samples) of each manifest row, the root directory joined in."""
    root, rows = read_manifest(str(tsv_path))
    return [(Path(root) / rel, samples) for _, rel, samples in rows]


def check_audio_exists(tsv_path: str, root: str, rows: List[Tuple[int, str, int]], max_report: int = 5) -> None:
    missing = [(lineno, rel) for lineno, rel, _ in rows if not os.path.isfile(os.path.join(root, rel))]
    if missing:
        shown = "; ".join(f"line {n}: {os.path.join(root, rel)}" for n, rel in missing[:max_report])
        raise DataError(f"{tsv_path}: {len(missing)} audio file(s) not found ({shown}); "
                        f"fix the root directory on line 1 or remove those rows")
    empty = [(lineno, rel) for lineno, rel, n in rows if n == 0]
    if empty:
        lineno, rel = empty[0]
        raise DataError(f"{tsv_path} line {lineno}: {rel} has 0 samples; remove zero-length audio from the manifest")


def audio_header_problem(path: str, samples: int, sample_rate: int) -> Optional[str]:
    """What is wrong with the header of one manifest row's audio (None: nothing), with the fix."""
    import soundfile

    try:
        info = soundfile.info(path)
    except Exception as e:  # soundfile raises RuntimeError or LibsndfileError, by version
        return (f"{path} is not readable audio ({str(e).strip()}); re-create the file or remove its row (and the "
                "same line of the label files)")
    if info.samplerate != sample_rate:
        return (f"{path} is {info.samplerate} Hz but the task reads {sample_rate} Hz; resample it "
                f"(sox in.wav -r {sample_rate} out.wav) or set task.sample_rate")
    if info.channels != 1:
        return f"{path} has {info.channels} channels; the models take mono audio: sox in.wav -c 1 out.wav"
    if info.frames != samples:
        return (f"{path} has {info.frames} samples but the manifest says {samples}: the file was truncated or "
                "changed, or the manifest is stale; re-create the file, or rebuild the manifest (fairseq's "
                "wav2vec_manifest.py, or python -m data_prep.corpus for the synthetic corpus)")
    return None


def check_audio_headers(tsv_path: str, root: str, rows: List[Tuple[int, str, int]], sample_rate: int) -> None:
    """Each file's header (not its samples): readable, at ``sample_rate``, mono, as long as the
    manifest says.  fairseq would otherwise fail mid-training on the first bad file, without its name."""
    for lineno, rel, samples in rows:
        problem = audio_header_problem(os.path.join(root, rel), samples, sample_rate)
        if problem:
            raise DataError(f"{tsv_path} line {lineno}: {problem}")


def check_labels(tsv_path: str, label_path: str, num_rows: int, dictionary=None, max_report: int = 5) -> None:
    """Line count, empty lines and (with ``dictionary``) symbols missing from the dictionary."""
    if not os.path.isfile(label_path):
        raise DataError(f"{label_path}: label file not found; it must sit next to {os.path.basename(tsv_path)}")
    with open(label_path, encoding="utf-8") as f:
        labels = f.read().splitlines()
    if len(labels) != num_rows:
        raise DataError(f"{os.path.basename(label_path)} has {len(labels)} lines but "
                        f"{os.path.basename(tsv_path)} lists {num_rows} files; they must match line by line "
                        f"({label_path}, {tsv_path})")
    for lineno, label in enumerate(labels, start=1):
        if not label.strip():
            raise DataError(f"{label_path} line {lineno}: empty transcript; remove the utterance from both "
                            f"{os.path.basename(label_path)} and {os.path.basename(tsv_path)}")
    if dictionary is not None:
        unknown = [
            (lineno, sorted({s for s in label.split() if dictionary.index(s) == dictionary.unk()}))
            for lineno, label in enumerate(labels, start=1)
        ]
        unknown = [(n, syms) for n, syms in unknown if syms]
        if unknown:
            shown = "; ".join(f"line {n}: {' '.join(syms)}" for n, syms in unknown[:max_report])
            raise DataError(f"{label_path}: {len(unknown)} line(s) hold symbols missing from the dictionary "
                            f"({shown}); add them to the dict file or normalize the transcripts")


FRAME_LABEL_TOLERANCE = 3  # frames: front ends lose 1-3 frames to their windows at the edges


def frame_label_problem(count: int, rel: str, samples: int, tsv_line: int, tsv_name: str, label_rate: float,
                        sample_rate: int, tolerance: int = FRAME_LABEL_TOLERANCE) -> Optional[str]:
    """None if ``count`` frame labels fit ``samples`` samples at ``label_rate``; else what is wrong."""
    expected = samples * label_rate / sample_rate
    if abs(count - expected) <= tolerance:
        return None
    seconds = samples / sample_rate
    return (f"{count} labels for {rel} ({seconds:.2f} s, line {tsv_line} of {tsv_name}), i.e. "
            f"{count / seconds:.1f} labels/s, but task.label_rate={label_rate:g} expects {expected:.0f} "
            f"(+-{tolerance}). Set task.label_rate to the labels' rate (data_prep.hubert_labels records it in "
            "labels.json: 100 for MFCC, 50 for features of a 20 ms model), or dump the labels again for this manifest")


def check_frame_labels(tsv_path: str, label_path: str, rows: List[Tuple[int, str, int]], label_rate: float,
                       sample_rate: int, tolerance: int = FRAME_LABEL_TOLERANCE) -> None:
    """One label per frame: each line's count must fit its audio at ``label_rate`` labels/s.

    A mismatch is an error, not a per-utterance warning (fairseq's HuBERT data only warns and
    then trains on labels shifted against the frames, e.g. 50 Hz model-feature labels read
    at MFCC's 100 Hz)."""
    with open(label_path, encoding="utf-8") as f:
        for lineno, (line, (tsv_line, rel, samples)) in enumerate(zip(f, rows), start=1):
            problem = frame_label_problem(len(line.split()), rel, samples, tsv_line, os.path.basename(tsv_path),
                                          label_rate, sample_rate, tolerance)
            if problem:
                raise DataError(f"{label_path} line {lineno}: {problem}")


def validate_split(data_dir: str, split: str, labels: Optional[str], dictionary=None,
                   sample_rate: Optional[int] = 16000) -> int:
    """Validate ``split`` of a fairseq audio data directory; return its number of utterances.
    ``sample_rate=None`` skips reading the audio headers."""
    tsv = os.path.join(data_dir, f"{split}.tsv")
    root, rows = read_manifest(tsv)
    check_audio_exists(tsv, root, rows)
    if sample_rate:
        check_audio_headers(tsv, root, rows, sample_rate)
    if labels:
        check_labels(tsv, os.path.join(data_dir, f"{split}.{labels}"), len(rows), dictionary)
    return len(rows)
