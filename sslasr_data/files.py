"""Atomic text files: a reader never sees half a file, and a killed writer leaves the old one."""
import os
from pathlib import Path
from typing import Iterable, Union


def write_text(path: Union[str, Path], text: str) -> None:
    """Write ``text`` (UTF-8, whatever the locale) to ``path`` through a temporary file in the same
    folder, then rename it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # hidden, this process's own
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_lines(path: Union[str, Path], lines: Iterable[str]) -> None:
    """``lines``, each ended by a newline, written atomically."""
    write_text(path, "".join(line + "\n" for line in lines))
