"""Every change the plugin makes to fairseq's and torch's behaviour, applied by ``apply()``.

``sslasr_plugin/__init__.py`` calls ``apply()``, so importing the plugin (what
``common.user_dir`` does) makes fairseq's checkpoint loader safe and its checkpoint copies
atomic; nothing else in the plugin patches.  Tools that need only manifests and data checks
import ``sslasr_data``, which patches nothing.
"""
import torch
from fairseq import checkpoint_utils

from .checkpoint import SAFE_GLOBALS, AtomicCopyPathManager, guarded_loader


def apply() -> None:
    """Install the patches (idempotent)."""
    # torch >= 2.6 loads with weights_only=True, which refuses fairseq's fine-tuned checkpoints
    # ("Unsupported global: fairseq.data.dictionary.Dictionary"): allow exactly the classes they hold.
    torch.serialization.add_safe_globals(SAFE_GLOBALS)
    # fairseq's load_checkpoint_to_cpu passes on torch's bare unpickling error: name the file and the
    # offending global, or say the file is truncated and which checkpoints to resume from.
    if not hasattr(checkpoint_utils.load_checkpoint_to_cpu, "__wrapped__"):
        checkpoint_utils.load_checkpoint_to_cpu = guarded_loader(checkpoint_utils.load_checkpoint_to_cpu)
    # fairseq's save_checkpoint copies checkpoint_N.pt to checkpoint_last.pt in place: a kill during the
    # copy truncates the file a restarted job resumes from; copy to .tmp and rename instead.
    checkpoint_utils.PathManager = AtomicCopyPathManager
