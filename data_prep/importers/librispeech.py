"""LibriSpeech (``SPEAKER/CHAPTER/SPEAKER-CHAPTER-UTT.flac`` + ``SPEAKER-CHAPTER.trans.txt``) to fairseq files.

    python -m data_prep.importers.librispeech --root /data/LibriSpeech --out data/ls100 \\
        --splits labeled=train-clean-100 unlabeled=train-clean-360,train-other-500 valid=dev-other test=test-other

Each ``SPLIT=SUBSET[,SUBSET...]`` writes ``<out>/SPLIT.{tsv,wrd,ltr}`` from those subset folders
of ``--root``.  Transcripts are kept as LibriSpeech writes them (upper case, apostrophes; only
whitespace is collapsed); an ``unlabeled`` split keeps them too, for the oracle error rate
slimIPL logs (training never reads them).  The audio is referenced where it lies (16 kHz mono
FLAC); nothing is copied.
"""
import argparse
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from .common import (
    AUDIO_EXTENSIONS, ImportProblem, ImportResult, Item, add_audio_arguments, audio_kwargs,
    normalize_librispeech, run_cli, write_split,
)


def librispeech_items(folder: Path) -> List[Item]:
    """One item per line of every ``*.trans.txt`` under ``folder``, keyed ``SPEAKER/CHAPTER/UTT``."""
    transcripts = sorted(folder.rglob("*.trans.txt"))
    if not transcripts:
        raise ImportProblem(f"{folder}: no *.trans.txt under it; point at a LibriSpeech subset folder "
                            "(e.g. LibriSpeech/train-clean-100, holding SPEAKER/CHAPTER/SPEAKER-CHAPTER.trans.txt)")
    items = []
    for trans in transcripts:
        for lineno, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            utt, _, text = line.partition(" ")
            audio = next((trans.parent / f"{utt}{ext}" for ext in AUDIO_EXTENSIONS
                          if (trans.parent / f"{utt}{ext}").is_file()), None)
            if audio is None:
                raise ImportProblem(f"{trans} line {lineno}: no audio {utt}.flac beside it; restore the file "
                                    "or remove the line")
            parts = utt.split("-")
            key = "/".join(parts[:2] + [utt]) if len(parts) == 3 else str(audio.relative_to(folder).with_suffix(""))
            items.append(Item(key, str(audio), normalize_librispeech(text)))
    return items


def import_librispeech(root, split: str, subsets: Sequence[str] = (), **kwargs) -> ImportResult:
    """Import the LibriSpeech subset folders ``subsets`` of ``root`` (or ``root`` itself when none
    is named) as ``split``; ``kwargs`` go to :func:`data_prep.importers.common.write_split`."""
    folders = [Path(root) / s for s in subsets] or [Path(root)]
    for folder in folders:
        if not folder.is_dir():
            raise ImportProblem(f"{folder}: no such folder; LibriSpeech subsets are folders such as "
                                "train-clean-100, dev-clean, test-other under LibriSpeech/")
    items = [item for folder in folders for item in librispeech_items(folder)]
    return write_split(items, split=split, source="librispeech", inputs=folders, normalization="librispeech",
                       **kwargs)


def parse_splits(values: Sequence[str]) -> List[tuple]:
    pairs = []
    for value in values:
        split, _, subsets = value.partition("=")
        if not split or not subsets:
            raise argparse.ArgumentTypeError(f"--splits takes SPLIT=SUBSET[,SUBSET...], not {value!r}")
        pairs.append((split, subsets.split(",")))
    return pairs


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True, help="the LibriSpeech folder (holding train-clean-100, ...)")
    parser.add_argument("--splits", nargs="+", required=True, metavar="SPLIT=SUBSET[,SUBSET]",
                        help="which subsets become which split, e.g. labeled=train-clean-100 valid=dev-clean")
    add_audio_arguments(parser, split=False)
    args = parser.parse_args(argv)
    try:
        splits = parse_splits(args.splits)
    except argparse.ArgumentTypeError as err:
        parser.error(str(err))
    return run_cli("data_prep.importers.librispeech", argv, lambda: [
        import_librispeech(args.root, split, subsets, **audio_kwargs(args)) for split, subsets in splits])


if __name__ == "__main__":
    sys.exit(main())
