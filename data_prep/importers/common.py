"""What every importer shares: audio as it comes to 16 kHz mono rows, the fairseq files, the record.

An importer lists :class:`Item` s (one source file, or one lhotse cut, with its transcript) and
hands them to :func:`write_split`, which

- reads each file's header only (``soundfile.info``) when the file is already 16 kHz mono and whole;
- otherwise writes a 16 kHz mono FLAC into the cache folder: other sample rates are resampled with
  torchaudio when asked (``resample=True``) and refused with the fix otherwise; multi-channel audio
  needs an explicit ``channel`` (a channel index, or ``"mix"`` for the mean of all channels);
  long files are cut into chunks (``segment_seconds``) written there too, since a fairseq manifest
  row is a whole file;
- appends each finished item to ``<out>/.import/<split>.jsonl``, so a killed import resumes there;
- writes ``<split>.tsv`` (and ``.wrd``/``.ltr`` for transcribed sources), ``dict.ltr.txt`` and
  ``import.json`` (what was imported, from where, with which options and text normalization);
- runs :func:`data_prep.check.check_split` on the result, so characters outside the dictionary,
  empty transcripts and bad audio are reported with file and line (never silently dropped).

A split is never replaced by another import without ``overwrite``.
"""
import json
import os
import re
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import soundfile as sf

from sslasr_data.files import write_lines

from ..corpus import SAMPLE_RATE, write_dictionary
from ..text import letters

AUDIO_EXTENSIONS = (".flac", ".wav", ".ogg")
RECORD = "import.json"
DICTIONARIES = ("fixed", "from-text")
Channel = Union[None, str, int]  # None: refuse multi-channel audio; "mix": mean; int: that channel
Row = Tuple[str, int]  # absolute audio path, samples at 16 kHz


class ImportProblem(RuntimeError):
    """The source cannot be imported as asked; the message names the file and the fix."""

    def __init__(self, message: str, flag: Optional[str] = None):
        super().__init__(message)
        self.flag = flag  # the command-line option that fixes it, for the CLI's rerun command


PUNCTUATION = re.compile(r"[.,;:!?\"()\[\]{}]")


def normalize_librispeech(text: str) -> str:
    """LibriSpeech (and Libri-Light) transcripts are already upper-case letters and apostrophes:
    only whitespace is collapsed."""
    return " ".join(text.split())


def normalize_generic(text: str) -> str:
    """Our corpus's rules (data_prep/text.py) without its rejections: upper case, ``-``/``--``
    become word breaks, punctuation is dropped, apostrophes stay only inside words.  Digits,
    accented letters and other symbols are kept, so data_prep.check reports them against the
    dictionary instead of their words silently losing letters."""
    words = PUNCTUATION.sub(" ", text.upper().replace("-", " ")).split()
    return " ".join(w for w in (word.strip("'") for word in words) if w)


NORMALIZERS: Dict[str, Callable[[str], str]] = {"librispeech": normalize_librispeech, "generic": normalize_generic}


@dataclass(frozen=True)
class Item:
    """One source of manifest rows: a file (several rows when it is cut into chunks), or audio
    that ``load`` returns."""

    key: str  # unique in the split, a relative path without extension: names the cache file
    path: str  # the source file (for lhotse: the recording id, for messages)
    text: Optional[str] = None  # normalized transcript; None for unlabeled audio
    load: Optional[Callable[[], Tuple[np.ndarray, int]]] = field(default=None, compare=False)
    # load() -> (channels x samples float array, sample rate): audio only a library can read


@dataclass(frozen=True)
class AudioOptions:
    cache: Path
    resample: bool = False
    channel: Channel = None
    segment_seconds: float = 0  # 0: whole files
    min_segment_seconds: float = 1.0  # a shorter tail joins the chunk before it


@dataclass
class ImportResult:
    out: Path
    split: str
    rows: int
    hours: float
    problems: List[str]


def select_channel(audio: np.ndarray, channel: Channel, where: str) -> np.ndarray:
    """Mono from (channels x samples) audio, as ``channel`` says."""
    if audio.shape[0] == 1:
        return audio[0]
    if channel is None:
        raise ImportProblem(f"{where} has {audio.shape[0]} channels; the models take mono audio: choose "
                            "--channel mix (mean of the channels) or --channel N (keep channel N, from 0)",
                            "--channel mix")
    if channel == "mix":
        return audio.mean(axis=0)
    if not 0 <= int(channel) < audio.shape[0]:
        raise ImportProblem(f"{where} has {audio.shape[0]} channels; --channel {channel} does not exist")
    return audio[int(channel)]


def to_16k(mono: np.ndarray, rate: int) -> np.ndarray:
    if rate == SAMPLE_RATE:
        return mono
    import torch
    import torchaudio

    return torchaudio.functional.resample(torch.from_numpy(np.ascontiguousarray(mono)), rate, SAMPLE_RATE).numpy()


def _write_flac(path: Path, audio: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.flac")
    # Resampling can overshoot full scale slightly; 16-bit FLAC would wrap instead of clipping.
    sf.write(str(tmp), np.clip(audio, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16")
    os.replace(tmp, path)


def _segments(frames: int, rate: int, opts: AudioOptions) -> List[Tuple[int, int]]:
    """(start, length) chunks of ``segment_seconds``; a tail under ``min_segment_seconds`` joins
    the chunk before it, so no audio is lost."""
    seg = int(round(opts.segment_seconds * rate)) if opts.segment_seconds > 0 else 0
    if not seg or frames <= seg:
        return [(0, frames)]
    count = frames // seg + (frames % seg >= opts.min_segment_seconds * rate)
    return [(k * seg, seg if k < count - 1 else frames - k * seg) for k in range(count)]


def _refuse_other_rate(where: str, rate: int, opts: AudioOptions) -> None:
    if rate != SAMPLE_RATE and not opts.resample:
        raise ImportProblem(
            f"{where} is {rate} Hz; the models read {SAMPLE_RATE} Hz. Pass --resample (resample=True) to write "
            f"16 kHz copies into {opts.cache}, or convert the files first (sox in.flac -r {SAMPLE_RATE} out.flac)",
            "--resample")


def prepare(item: Item, opts: AudioOptions) -> List[Row]:
    """The 16 kHz mono rows of one item: the source file itself when it can serve as is,
    otherwise files written into the cache (reused when a resumed import finds them)."""
    if item.load is not None:
        target = opts.cache / f"{item.key}.flac"
        if not target.exists():
            audio, rate = item.load()
            _refuse_other_rate(item.path, rate, opts)
            _write_flac(target, to_16k(select_channel(audio, opts.channel, item.path), rate))
        return [(str(target), sf.info(str(target)).frames)]
    try:
        info = sf.info(item.path)
    except Exception as e:  # soundfile raises RuntimeError or LibsndfileError, by version
        raise ImportProblem(f"{item.path} is not readable audio ({str(e).strip()}); re-create or remove it")
    _refuse_other_rate(item.path, info.samplerate, opts)
    if info.channels > 1 and opts.channel is None:
        select_channel(np.zeros((info.channels, 1)), None, item.path)  # raises, with the choices
    pieces = _segments(info.frames, info.samplerate, opts)
    if info.samplerate == SAMPLE_RATE and info.channels == 1 and pieces == [(0, info.frames)]:
        return [(os.path.abspath(item.path), info.frames)]
    rows = []
    for k, (start, length) in enumerate(pieces):
        target = opts.cache / (f"{item.key}.flac" if len(pieces) == 1 else f"{item.key}_{k:05d}.flac")
        if not target.exists():
            audio = sf.read(item.path, frames=length, start=start, dtype="float32", always_2d=True)[0]
            _write_flac(target, to_16k(select_channel(audio.T, opts.channel, item.path), info.samplerate))
        rows.append((str(target), sf.info(str(target)).frames))
    return rows


def _load_record(out: Path) -> dict:
    path = out / RECORD
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"splits": {}}


def _claim_split(out: Path, split: str, request: dict, dictionary: str, overwrite: bool, cache: Path) -> bool:
    """Whether ``split`` is already imported exactly as requested; refuses to replace another
    import of it (or files we did not write) without ``overwrite``."""
    record = _load_record(out)
    if record.get("dictionary", dictionary) != dictionary and not overwrite:
        raise ImportProblem(f"{out / RECORD} says dict.ltr.txt is {record['dictionary']!r}; import with the "
                            "same --dictionary, or pass --overwrite to rebuild it")
    old = record["splits"].get(split)
    if old is not None and {k: old.get(k) for k in request} == request:
        return old.get("complete", False)
    exists = [p.name for p in out.glob(f"{split}.*") if p.suffix in (".tsv", ".ltr", ".wrd")]
    if (old is not None or exists) and not overwrite:
        what = f"{out / RECORD} records another import of it" if old else f"{', '.join(sorted(exists))} exist"
        raise ImportProblem(f"split {split!r} of {out}: {what}; choose another --split or --out, "
                            "or pass --overwrite to replace it")
    if old is not None or exists:
        (out / ".import" / f"{split}.jsonl").unlink(missing_ok=True)
        shutil.rmtree(cache, ignore_errors=True)
    return False


def _read_progress(path: Path, request: dict, cache: Path) -> Dict[str, List[Row]]:
    """The items an interrupted import of the same request finished; the progress (and the
    cache) of an import with other options is discarded, never mixed in."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    if not lines or json.loads(lines[0]) != {"request": request}:
        shutil.rmtree(cache, ignore_errors=True)
        path.parent.mkdir(exist_ok=True)
        write_lines(path, [json.dumps({"request": request})])
        return {}
    done = {}
    for line in lines[1:]:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:  # the line a kill cut short: that item is redone
            continue
        done[entry["key"]] = [tuple(row) for row in entry["rows"]]
    return done


def _check(out: Path, split: str, labeled: bool) -> List[str]:
    from ..check import check_split

    return [str(p) for p in check_split(out, split, ["ltr"] if labeled else []).problems]


def write_split(items: Sequence[Item], out: Union[str, Path], split: str, source: str, inputs: Iterable[str],
                normalization: str, cache: Optional[Union[str, Path]] = None, resample: bool = False,
                channel: Channel = None, segment_seconds: float = 0, min_segment_seconds: float = 1.0,
                dictionary: str = "fixed", overwrite: bool = False, jobs: int = 1,
                progress: bool = True) -> ImportResult:
    """Write ``items`` as split ``split`` of the fairseq data directory ``out`` (see the module doc)."""
    if dictionary not in DICTIONARIES:
        raise ImportProblem(f"dictionary must be one of {', '.join(DICTIONARIES)}, not {dictionary!r}")
    if not items:
        raise ImportProblem(f"nothing to import into {split!r} from {', '.join(map(str, inputs))}")
    keys = [item.key for item in items]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise ImportProblem(f"two sources of {split!r} have the same name {dup!r}; import them into separate splits")
    out = Path(out).resolve()
    opts = AudioOptions(Path(cache).resolve() / split if cache else out / "cache" / split, resample, channel,
                        segment_seconds, min_segment_seconds)
    labeled = items[0].text is not None
    request = {"source": source, "inputs": [str(Path(i).resolve()) for i in inputs], "normalization": normalization,
               "options": {"resample": resample, "channel": channel, "segment_seconds": segment_seconds,
                           "min_segment_seconds": min_segment_seconds, "cache": str(opts.cache)}}
    out.mkdir(parents=True, exist_ok=True)
    complete = _claim_split(out, split, request, dictionary, overwrite, opts.cache)
    progress_file = out / ".import" / f"{split}.jsonl"
    done = {} if complete else _read_progress(progress_file, request, opts.cache)
    todo = [item for item in items if item.key not in done]
    if todo and not complete:
        from tqdm import tqdm

        with open(progress_file, "a", encoding="utf-8") as log, ThreadPoolExecutor(max(1, jobs)) as pool, \
                tqdm(total=len(items), initial=len(items) - len(todo), desc=f"importing {split}", unit="file",
                     disable=not progress) as bar:
            # Threads: soundfile and torch release the GIL while decoding and resampling.
            for item, rows in zip(todo, pool.map(lambda it: prepare(it, opts), todo)):
                done[item.key] = rows
                log.write(json.dumps({"key": item.key, "rows": rows}) + "\n")
                log.flush()
                bar.update()
    if not complete:
        _write_outputs(out, split, items, done, dictionary)
        record = _load_record(out)
        record["sample_rate"], record["dictionary"] = SAMPLE_RATE, dictionary
        rows = [row for item in items for row in done[item.key]]
        record["splits"][split] = dict(request, labeled=labeled, files=len(items), rows=len(rows),
                                       hours=round(sum(n for _, n in rows) / SAMPLE_RATE / 3600, 4),
                                       longest_seconds=max(n for _, n in rows) / SAMPLE_RATE,  # vs task.max_sample_size
                                       converted=sum(Path(p).is_relative_to(opts.cache) for p, _ in rows),
                                       complete=True)
        write_lines(out / RECORD, [json.dumps(record, indent=1)])
        progress_file.unlink(missing_ok=True)
    entry = _load_record(out)["splits"][split]
    return ImportResult(out, split, entry["rows"], entry["hours"], _check(out, split, labeled))


def _write_outputs(out: Path, split: str, items: Sequence[Item], done: Dict[str, List[Row]], dictionary: str):
    rows = [(item, row) for item in items for row in done[item.key]]
    root = os.path.commonpath([os.path.dirname(path) for _, (path, _) in rows])
    write_lines(out / f"{split}.tsv", [root] + [f"{os.path.relpath(p, root)}\t{n}" for _, (p, n) in rows])
    if items[0].text is not None:
        write_lines(out / f"{split}.wrd", [item.text for item, _ in rows])
        write_lines(out / f"{split}.ltr", [letters(item.text) for item, _ in rows])
    texts = []
    if dictionary == "from-text":
        for wrd in sorted(out.glob("*.wrd")):
            texts += wrd.read_text(encoding="utf-8").splitlines()
    write_dictionary(out / "dict.ltr.txt", texts)


def audio_files(root: Path) -> List[Path]:
    """Every audio file under ``root`` (flac, wav, ogg), sorted."""
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())


def add_audio_arguments(parser, split: bool = True) -> None:
    """The options every importer's command line shares."""
    parser.add_argument("--out", required=True, help="fairseq data directory to write (other splits in it stay)")
    if split:
        parser.add_argument("--split", required=True, help="split name to write: <out>/<split>.tsv, ...")
    parser.add_argument("--cache", help="folder for converted audio (resampled, one channel, segments); "
                        "default <out>/cache")
    parser.add_argument("--resample", action="store_true",
                        help=f"resample audio that is not {SAMPLE_RATE} Hz into the cache (torchaudio)")
    parser.add_argument("--channel", type=lambda v: v if v == "mix" else int(v),
                        help="multi-channel audio: 'mix' (mean of the channels) or a channel index from 0; "
                        "without it such audio is refused")
    parser.add_argument("--dictionary", default="fixed", choices=DICTIONARIES,
                        help="dict.ltr.txt: our corpus's fixed letter set (default; checkpoints stay compatible) "
                        "or every symbol of the imported text")
    parser.add_argument("--jobs", type=int, default=1, help="files read or converted at once (threads)")
    parser.add_argument("--overwrite", action="store_true", help="replace another import of the same split")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def audio_kwargs(args) -> dict:
    return dict(out=args.out, cache=args.cache, resample=args.resample, channel=args.channel,
                dictionary=args.dictionary, overwrite=args.overwrite, jobs=args.jobs,
                progress=not args.no_progress)


def run_cli(module: str, argv: Optional[Sequence[str]], body: Callable[[], List[ImportResult]]) -> int:
    """Run an importer for its command line: a summary per split, the problems data_prep.check
    found, and for a refusal the command that fixes it.  Exit status 0 clean, 1 problems, 2 refused."""
    from sslasr_data.validate import DataError

    try:
        results = body()
    except (ImportProblem, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        flag = getattr(err, "flag", None)
        if flag:
            import shlex

            args = list(sys.argv[1:] if argv is None else argv)
            print(f"rerun as: python -m {module} {shlex.join(args + flag.split())}", file=sys.stderr)
        return 2
    status = 0
    for result in results:
        for problem in result.problems[:20]:
            print(problem)
        print(f"{result.split}: {result.rows} rows, {result.hours:.2f} h in {result.out / result.split}.tsv"
              + (f"; {len(result.problems)} problem(s), listed by python -m data_prep.check --data {result.out}"
                 f" --splits {result.split} --labels ltr" if result.problems else ""))
        status = max(status, 1 if result.problems else 0)
    return status
