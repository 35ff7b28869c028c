"""Atomic text files: a reader never sees half a file, and a killed writer leaves the old one."""
import os
from pathlib import Path
from typing import Iterable, Union


def write_text(path: Union[str, Path], text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder, then rename it."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_lines(path: Union[str, Path], lines: Iterable[str]) -> None:
    """``lines``, each ended by a newline, written atomically."""
    write_text(path, "".join(line + "\n" for line in lines))
