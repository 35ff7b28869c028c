"""Checkpoints: a safe loader with clear errors, and an atomic copy for fairseq's checkpoint writes.

``sslasr_plugin.patches`` installs them into fairseq; the reasoning is in docs/design.md
("Checkpoints").
"""
import argparse
import glob
import os
import pickle
import re
import shutil
import struct
import zipfile

import torch
from fairseq.data.dictionary import Dictionary
from fairseq.file_io import PathManager

# Dictionary: task state of fine-tuned models (label dictionaries).  Namespace: the options of
# checkpoints written by fairseq < 0.10 (e.g. the first wav2vec 2.0 releases), stored as `args`.
SAFE_GLOBALS = [Dictionary, argparse.Namespace]


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint's pickle references a global outside the allow-list."""


def _unsafe_globals(path) -> list:
    """Globals the pickle in ``path`` references beyond the allow-list (read, never executed)."""
    allowed = {f"{c.__module__}.{c.__qualname__}" for c in SAFE_GLOBALS}
    try:
        return [g for g in torch.serialization.get_unsafe_globals_in_checkpoint(path) if g not in allowed]
    except Exception:  # not a zip checkpoint at all: torch's own error says more
        return []


def _first_line(err: Exception) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def _unsafe_message(path, err: Exception) -> str:
    # torch names the global in its error for legacy (non-zip) files: "unsupported GLOBAL posix.system"
    found = _unsafe_globals(path) or re.findall(r"GLOBAL (\S+)", str(err))[:1]
    what = ", ".join(found) if found else _first_line(err)
    return (
        f"refused to load {path}: its pickle references {what}, which fairseq checkpoints never "
        "contain, so it may run arbitrary code. Do not load it unless you trust its origin; the "
        "allow-list is sslasr_plugin.checkpoint.SAFE_GLOBALS."
    )


def load_checkpoint(path: str, map_location="cpu"):
    """torch.load with weights_only=True and the allow-list; clear errors for unsafe and
    truncated files."""
    try:
        with open(path, "rb") as f:
            return torch.load(f, map_location=map_location, weights_only=True)
    except Exception as err:
        clear = _clear_error(path, err)
        if clear is None:
            raise
        raise clear from err


def atomic_copy(src_path: str, dst_path: str, overwrite: bool = False) -> bool:
    """fairseq's ``PathManager.copy`` for local files, made atomic: ``dst_path`` is never seen
    half-written.  Remote paths (``scheme://``) and refusals to overwrite go to fairseq's copy."""
    if "://" in src_path or "://" in dst_path or (os.path.exists(dst_path) and not overwrite):
        return PathManager.copy(src_path, dst_path, overwrite=overwrite)
    tmp = f"{dst_path}.tmp"
    try:
        shutil.copyfile(src_path, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dst_path)
    except BaseException:  # a full disk, say: no half-written .tmp is left behind
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        fd = os.open(os.path.dirname(os.path.abspath(dst_path)), os.O_RDONLY)
    except OSError:  # a file system that cannot open directories
        return True
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
    return True


class AtomicCopyPathManager(PathManager):
    """fairseq's PathManager as checkpoint_utils sees it, with an atomic ``copy``."""

    copy = staticmethod(atomic_copy)


class IncompleteCheckpointError(RuntimeError):
    """A checkpoint file that is not a whole torch zip archive (truncated, or not a checkpoint)."""


def _incomplete_message(path, err: Exception) -> str:
    others = sorted((p for p in glob.glob(os.path.join(os.path.dirname(os.path.abspath(path)), "checkpoint*.pt"))
                     if os.path.abspath(p) != os.path.abspath(path)), key=os.path.getmtime, reverse=True)
    hint = (f" The other checkpoints there, newest first: {', '.join(others[:4])}. To resume from the newest "
            f"whole one with its optimizer state, schedule and best score, keep this file aside and copy that one "
            f"in its place: mv {path} {path}.incomplete && cp {others[0]} {path}") if others else ""
    return (f"{path} is not a complete checkpoint ({_first_line(err)}): it was cut short while "
            f"being written (a job killed mid-write by a tool other than this plugin, a full disk) or is not a "
            f"checkpoint at all.{hint}")


def _is_incomplete(err: Exception) -> bool:
    text = str(err)
    return "PytorchStreamReader" in text or "zip archive" in text or "central directory" in text


def _clear_error(path, err: Exception):
    """The error to raise instead of ``err`` from loading ``path`` (None: keep ``err``)."""
    if isinstance(err, (UnsafeCheckpointError, IncompleteCheckpointError)):
        return None
    if isinstance(err, pickle.UnpicklingError) and ("GLOBAL" in str(err) or _unsafe_globals(path)):
        return UnsafeCheckpointError(_unsafe_message(path, err))
    if isinstance(err, RuntimeError) and _is_incomplete(err):
        return IncompleteCheckpointError(_incomplete_message(path, err))
    # Not a zip archive (an empty file, a few bytes, other data) read as a legacy pickle: torch
    # fails with whatever the bytes happen to trip (EOFError, IndexError, struct.error, ...).
    if isinstance(err, (pickle.UnpicklingError, EOFError, IndexError, struct.error)) \
            and os.path.isfile(path) and not zipfile.is_zipfile(path):
        return IncompleteCheckpointError(_incomplete_message(path, err))
    return None


def guarded_loader(load_fn):
    """``load_fn`` (fairseq's ``load_checkpoint_to_cpu``) raising the clear errors of ``load_checkpoint``."""
    def load_checkpoint_to_cpu(path, *args, **kwargs):
        try:
            return load_fn(path, *args, **kwargs)
        except Exception as err:
            clear = _clear_error(path, err)
            if clear is None:
                raise
            raise clear from err

    load_checkpoint_to_cpu.__wrapped__ = load_fn
    return load_checkpoint_to_cpu
