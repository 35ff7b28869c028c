"""Checkpoints: safe loading, complete writing.

Loading: torch >= 2.6 loads with ``weights_only=True``, which refuses fairseq's fine-tuned
checkpoints ("Unsupported global: fairseq.data.dictionary.Dictionary").  Rather than turning the
safe loader off, this module allow-lists exactly the classes that fairseq and this plugin store
in checkpoints.  A file whose pickle calls anything else (``os.system``, say) is refused, and the
error names the file and the offending global.  A truncated file is named as such, with the
other checkpoints of its directory to resume from.

Writing: fairseq writes a checkpoint to ``name.tmp`` and renames it, but then *copies* it to
``checkpoint_last.pt`` (and ``checkpoint_best.pt``) in place: a run killed during that copy
leaves a truncated ``checkpoint_last.pt``, which is exactly the file a restarted job resumes
from.  The plugin makes that copy atomic too (copy to ``.tmp``, fsync, rename), so the latest
checkpoint is always either the previous one or the new one, whole.
"""
import argparse
import glob
import os
import pickle
import shutil

import torch
from fairseq import checkpoint_utils
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


def _unsafe_message(path, err: Exception) -> str:
    found = _unsafe_globals(path)
    what = ", ".join(found) if found else str(err).strip().splitlines()[0]
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
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(_unsafe_message(path, err)) from err
    except RuntimeError as err:
        if not _is_incomplete(err):
            raise
        raise IncompleteCheckpointError(_incomplete_message(path, err)) from err


def atomic_copy(src_path: str, dst_path: str, overwrite: bool = False) -> bool:
    """fairseq's ``PathManager.copy`` for local files, made atomic: ``dst_path`` is never seen
    half-written.  Remote paths (``scheme://``) and refusals to overwrite go to fairseq's copy."""
    if "://" in src_path or "://" in dst_path or (os.path.exists(dst_path) and not overwrite):
        return PathManager.copy(src_path, dst_path, overwrite=overwrite)
    tmp = f"{dst_path}.tmp"
    shutil.copyfile(src_path, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, dst_path)
    return True


class _AtomicCopyPathManager(PathManager):
    """fairseq's PathManager as checkpoint_utils sees it, with an atomic ``copy``."""

    copy = staticmethod(atomic_copy)


class IncompleteCheckpointError(RuntimeError):
    """A checkpoint file that is not a whole torch zip archive (truncated, or not a checkpoint)."""


def _incomplete_message(path, err: Exception) -> str:
    others = sorted((p for p in glob.glob(os.path.join(os.path.dirname(os.path.abspath(path)), "checkpoint*.pt"))
                     if os.path.abspath(p) != os.path.abspath(path)), key=os.path.getmtime, reverse=True)
    hint = (f" The other checkpoints there, newest first: {', '.join(others[:4])}; resume from one with "
            f"checkpoint.restore_file=<it>, or move {os.path.basename(path)} away") if others else ""
    return (f"{path} is not a complete checkpoint ({str(err).strip().splitlines()[0]}): it was cut short while "
            f"being written (a job killed mid-write by a tool other than this plugin, a full disk) or is not a "
            f"checkpoint at all.{hint}")


def _is_incomplete(err: Exception) -> bool:
    text = str(err)
    return "PytorchStreamReader" in text or "zip archive" in text or "central directory" in text


def _guard(load_fn):
    def load_checkpoint_to_cpu(path, *args, **kwargs):
        try:
            return load_fn(path, *args, **kwargs)
        except pickle.UnpicklingError as err:
            if isinstance(err, UnsafeCheckpointError):
                raise
            raise UnsafeCheckpointError(_unsafe_message(path, err)) from err
        except RuntimeError as err:
            if isinstance(err, IncompleteCheckpointError) or not _is_incomplete(err):
                raise
            raise IncompleteCheckpointError(_incomplete_message(path, err)) from err

    load_checkpoint_to_cpu.__wrapped__ = load_fn
    return load_checkpoint_to_cpu


torch.serialization.add_safe_globals(SAFE_GLOBALS)
# fairseq's loader relies on torch's default (weights_only=True); only its error is made clearer.
if not hasattr(checkpoint_utils.load_checkpoint_to_cpu, "__wrapped__"):
    checkpoint_utils.load_checkpoint_to_cpu = _guard(checkpoint_utils.load_checkpoint_to_cpu)
# save_checkpoint copies checkpoint_N.pt to checkpoint_last.pt / checkpoint_best.pt through this name.
checkpoint_utils.PathManager = _AtomicCopyPathManager
