"""A folder of audio without transcripts (Libri-Light small/medium/large, or any folder) to a fairseq manifest.

    python -m data_prep.importers.unlabeled --root /data/librilight/small --split unlabeled --out data/ll10h \\
        --segment-seconds 15

Every flac/wav/ogg file under ``--root`` becomes a row of ``<out>/<split>.tsv`` (no transcripts).
``--segment-seconds S`` cuts files longer than S into chunks of S seconds (a tail shorter than
``--min-segment-seconds`` joins the chunk before it, so no audio is lost).  A fairseq manifest row
is a whole file, so the chunks are written as 16 kHz FLAC files into the cache folder (about the
size of the source again); Libri-Light's own cut_by_vad.py cuts at silences instead, and its
output can be imported here unsegmented.
"""
import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from .common import (
    AUDIO_EXTENSIONS, ImportProblem, ImportResult, Item, add_audio_arguments, audio_kwargs, audio_files, run_cli,
    write_split,
)


def import_unlabeled(roots: Sequence, split: str = "unlabeled", segment_seconds: float = 0,
                     min_segment_seconds: float = 1.0, **kwargs) -> ImportResult:
    """Import every audio file under ``roots`` as the unlabeled ``split``, cut into chunks of
    ``segment_seconds`` when it is set; ``kwargs`` go to :func:`data_prep.importers.common.write_split`."""
    roots = [Path(r) for r in ([roots] if isinstance(roots, (str, Path)) else roots)]
    items = []
    for root in roots:
        files = audio_files(root)
        if not files:
            raise ImportProblem(f"{root}: no {'/'.join(AUDIO_EXTENSIONS)} files under it")
        prefix = root.name if len(roots) > 1 else ""
        items += [Item(str(Path(prefix) / f.relative_to(root).with_suffix("")), str(f)) for f in files]
    return write_split(items, split=split, source="unlabeled", inputs=roots, normalization="none",
                       segment_seconds=segment_seconds, min_segment_seconds=min_segment_seconds, **kwargs)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", nargs="+", required=True, help="folder(s) of audio, searched recursively")
    parser.add_argument("--segment-seconds", type=float, default=0, help="cut longer files into chunks this long")
    parser.add_argument("--min-segment-seconds", type=float, default=1.0,
                        help="a shorter last chunk joins the one before it")
    add_audio_arguments(parser)
    args = parser.parse_args(argv)
    return run_cli("data_prep.importers.unlabeled", argv, lambda: [import_unlabeled(
        args.root, args.split, args.segment_seconds, args.min_segment_seconds, **audio_kwargs(args))])


if __name__ == "__main__":
    sys.exit(main())
