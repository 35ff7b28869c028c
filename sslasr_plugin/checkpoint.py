"""Safe checkpoint loading: weights_only=True with an allow-list of what fairseq checkpoints hold.

torch >= 2.6 loads with ``weights_only=True``, which refuses fairseq's fine-tuned checkpoints
("Unsupported global: fairseq.data.dictionary.Dictionary").  Rather than turning the safe
loader off, this module allow-lists exactly the classes that fairseq and this plugin store in
checkpoints.  A file whose pickle calls anything else (``os.system``, say) is refused, and the
error names the file and the offending global.
"""
import pickle

import torch
from fairseq import checkpoint_utils
from fairseq.data.dictionary import Dictionary

SAFE_GLOBALS = [Dictionary]


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint's pickle references a global outside the allow-list."""


def _unsafe_message(path, err: Exception) -> str:
    return (
        f"refused to load {path}: its pickle references a global that fairseq checkpoints never "
        f"contain, so it may run arbitrary code ({str(err).splitlines()[-1] if str(err) else err}). "
        "Do not load it unless you trust its origin; the allow-list is "
        "sslasr_plugin.checkpoint.SAFE_GLOBALS."
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
