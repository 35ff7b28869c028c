"""Audio files plus a transcript table (CSV or TSV with a header row) to fairseq files.

    python -m data_prep.importers.table --table mine/train.csv --split labeled --out data/mine \\
        [--path-column path --text-column text --audio-root mine/audio]

Paths in the table are relative to ``--audio-root`` (default: the table's folder) or absolute.
Text gets the generic rules (data_prep.importers.common.normalize_generic: our corpus's rules,
upper case, punctuation dropped, nothing rejected); ``--normalization librispeech`` only
collapses whitespace.  Characters outside the dictionary stay and are reported by the check that
ends every import.
"""
import argparse
import csv
import sys
from pathlib import Path
from typing import Optional, Sequence

from .common import (
    NORMALIZERS, ImportProblem, ImportResult, Item, add_audio_arguments, audio_kwargs, run_cli, write_split,
)


def import_table(table, split: str, path_column: str = "path", text_column: str = "text", audio_root=None,
                 normalization: str = "generic", delimiter: Optional[str] = None, **kwargs) -> ImportResult:
    """Import the rows of ``table`` as ``split``; ``kwargs`` go to
    :func:`data_prep.importers.common.write_split`."""
    table = Path(table)
    root = Path(audio_root) if audio_root else table.parent
    if normalization not in NORMALIZERS:
        raise ImportProblem(f"unknown normalization {normalization!r}; choose one of {', '.join(NORMALIZERS)}")
    normalize = NORMALIZERS[normalization]
    delimiter = delimiter or ("\t" if table.suffix.lower() == ".tsv" else ",")
    with open(table, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        missing = [c for c in (path_column, text_column) if c not in (reader.fieldnames or [])]
        if missing:
            raise ImportProblem(f"{table} line 1: no column {' or '.join(map(repr, missing))} in the header "
                                f"{reader.fieldnames}; name the columns with --path-column/--text-column "
                                "(or --delimiter if the table is not split by " + repr(delimiter) + ")")
        items = []
        for row in reader:
            lineno = reader.line_num
            rel = (row[path_column] or "").strip()
            audio = root / rel
            if not rel or not audio.is_file():
                raise ImportProblem(f"{table} line {lineno}: audio {str(audio)!r} not found; fix the path "
                                    "(relative to --audio-root) or remove the row")
            key = audio.resolve().relative_to(root.resolve()) if audio.resolve().is_relative_to(root.resolve()) \
                else Path(*audio.resolve().parts[1:])
            items.append(Item(str(key.with_suffix("")), str(audio), normalize(row[text_column] or "")))
    return write_split(items, split=split, source="table", inputs=[table], normalization=normalization, **kwargs)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--table", required=True, help="CSV or TSV file with a header row")
    parser.add_argument("--path-column", default="path", help="column of audio paths")
    parser.add_argument("--text-column", default="text", help="column of transcripts")
    parser.add_argument("--audio-root", help="folder the paths are relative to (default: the table's folder)")
    parser.add_argument("--delimiter", help="column separator (default: tab for .tsv, comma otherwise)")
    parser.add_argument("--normalization", default="generic", choices=sorted(NORMALIZERS), help="text rules")
    add_audio_arguments(parser)
    args = parser.parse_args(argv)
    return run_cli("data_prep.importers.table", argv, lambda: [import_table(
        args.table, args.split, args.path_column, args.text_column, args.audio_root, args.normalization,
        args.delimiter, **audio_kwargs(args))])


if __name__ == "__main__":
    sys.exit(main())
