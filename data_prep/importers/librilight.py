"""Libri-Light's limited-resource labeled sets (``librispeech_finetuning/``) to fairseq files.

    python -m data_prep.importers.librilight --root /data/librispeech_finetuning --set 10h \\
        --split labeled --out data/ll10h

The papers' sets by their usual definitions (wav2vec 2.0, HuBERT, slimIPL use these):

    10min  1h/0/{clean,other}
    1h     1h/{0..5}/{clean,other}
    10h    1h/{0..5}/{clean,other} + 9h/{clean,other}

Each folder has LibriSpeech's layout (``SPEAKER/CHAPTER/*.flac`` + ``*.trans.txt``), imported
with LibriSpeech's text rules (data_prep.importers.librispeech).
"""
import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from .common import ImportProblem, ImportResult, add_audio_arguments, audio_kwargs, run_cli, write_split
from .librispeech import librispeech_items

ONE_HOUR = [f"1h/{i}" for i in range(6)]
LIMITED_SETS = {"10min": ["1h/0"], "1h": ONE_HOUR, "10h": ONE_HOUR + ["9h"]}


def limited_folders(root: Path, name: str):
    """The folders of set ``name`` under ``root`` (``librispeech_finetuning`` or the folder holding it)."""
    if name not in LIMITED_SETS:
        raise ImportProblem(f"unknown limited-resource set {name!r}; choose one of {', '.join(LIMITED_SETS)}")
    if not (root / "1h").is_dir() and (root / "librispeech_finetuning" / "1h").is_dir():
        root = root / "librispeech_finetuning"
    folders = [root / part / kind for part in LIMITED_SETS[name] for kind in ("clean", "other")]
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
        raise ImportProblem(f"{root} is not Libri-Light's librispeech_finetuning folder: {', '.join(missing[:3])} "
                            "missing; unpack librispeech_finetuning.tgz and pass the folder it makes")
    return folders


def import_librilight_limited(root, name: str, split: str = "labeled", **kwargs) -> ImportResult:
    """Import Libri-Light's ``name`` set (10min, 1h, 10h) as ``split``; ``kwargs`` go to
    :func:`data_prep.importers.common.write_split`."""
    folders = limited_folders(Path(root), name)
    items = [item for folder in folders for item in librispeech_items(folder)]
    return write_split(items, split=split, source=f"librilight-{name}", inputs=folders,
                       normalization="librispeech", **kwargs)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True, help="the librispeech_finetuning folder")
    parser.add_argument("--set", required=True, choices=sorted(LIMITED_SETS), help="which labeled set")
    add_audio_arguments(parser)
    args = parser.parse_args(argv)
    return run_cli("data_prep.importers.librilight", argv,
                   lambda: [import_librilight_limited(args.root, args.set, args.split, **audio_kwargs(args))])


if __name__ == "__main__":
    sys.exit(main())
