"""Safe checkpoint loading: weights_only=True with an allow-list of what fairseq checkpoints hold.

torch >= 2.6 loads with ``weights_only=True``, which refuses fairseq's fine-tuned checkpoints
("Unsupported global: fairseq.data.dictionary.Dictionary").  Rather than turning the safe
loader off, this module allow-lists exactly the classes that fairseq and this plugin store in
checkpoints.  A file whose pickle calls anything else (``os.system``, say) is refused, and the
error names the file and the offending global.
"""
import argparse
import pickle

import torch
from fairseq import checkpoint_utils
from fairseq.data.dictionary import Dictionary

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
    """torch.load with weights_only=True and the allow-list; a clear error for unsafe files."""
    try:
        with open(path, "rb") as f:
            return torch.load(f, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(_unsafe_message(path, err)) from err


def _guard(load_fn):
    def load_checkpoint_to_cpu(path, *args, **kwargs):
        try:
            return load_fn(path, *args, **kwargs)
        except pickle.UnpicklingError as err:
            if isinstance(err, UnsafeCheckpointError):
                raise
            raise UnsafeCheckpointError(_unsafe_message(path, err)) from err

    load_checkpoint_to_cpu.__wrapped__ = load_fn
    return load_checkpoint_to_cpu


torch.serialization.add_safe_globals(SAFE_GLOBALS)
# fairseq's loader relies on torch's default (weights_only=True); only its error is made clearer.
if not hasattr(checkpoint_utils.load_checkpoint_to_cpu, "__wrapped__"):
    checkpoint_utils.load_checkpoint_to_cpu = _guard(checkpoint_utils.load_checkpoint_to_cpu)
