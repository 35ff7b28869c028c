"""Every change the plugin makes to fairseq's and torch's behaviour, applied by ``apply()``.

``sslasr_plugin/__init__.py`` calls ``apply()``, so importing the plugin (what
``common.user_dir`` does) makes fairseq's checkpoint loader safe, its checkpoint copies atomic,
its batching keep the last batch it drops (evaluation and training alike), its wav2vec 2.0 and
HuBERT masks follow ``common.seed``, its EMA start from a checkpoint that holds none, its
training loop and data loaders hand freed memory back to the operating system, its training loop
stop at ``max_update`` when a finished run is started again, and its training log free of
known-harmless warnings; nothing else in the plugin patches.
Tools that need only manifests and data checks import ``sslasr_data``, which patches nothing.
"""
import ctypes
import functools
import importlib
import logging
import re
import warnings

import numpy as np
import torch
from fairseq import checkpoint_utils, trainer
from fairseq.data import data_utils, iterators

from .checkpoint import SAFE_GLOBALS, AtomicCopyPathManager, guarded_loader
from .parallel import rank_and_world

logger = logging.getLogger(__name__)


# (category, start of the message, why it is harmless): filtered by message, so that other
# warnings of the same category still show.
KNOWN_HARMLESS_WARNINGS = (
    (FutureWarning, "`torch.nn.utils.weight_norm` is deprecated",
     "fairseq's wav2vec 2.0 positional convolution calls it; torch still supports it"),
    (FutureWarning, "`torch.cuda.amp.autocast(args...)` is deprecated",
     "fairseq's train_step calls it (disabled unless --amp); torch still supports it"),
    (UserWarning, "'pin_memory' argument is set as true but no accelerator is found",
     "fairseq always asks its data loader to pin memory; on a CPU there is nothing to pin"),
)
# fairseq's FileAudioDataset logs this at DEBUG level for every manifest when pyarrow is missing.
PYARROW_DEBUG_LINE = "Could not create a pyarrow array"


class _DropMessage(logging.Filter):
    def __init__(self, start: str):
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.start)


def quiet_known_warnings() -> None:
    for category, start, _ in KNOWN_HARMLESS_WARNINGS:
        warnings.filterwarnings("ignore", message=re.escape(start), category=category)
    audio_log = logging.getLogger("fairseq.data.audio.raw_audio_dataset")
    if not any(isinstance(f, _DropMessage) for f in audio_log.filters):
        audio_log.addFilter(_DropMessage(PYARROW_DEBUG_LINE))


def keep_remainder_batch(batch_by_size):
    """``batch_by_size`` that keeps the last batch fairseq drops when its size is not a multiple of
    ``required_batch_size_multiple`` (fairseq issue 5036): dropped, every evaluation with the
    default multiple of 8 silently skipped up to 7 utterances (4 of 700 in a lowres test split).
    Training batches get it too (every utterance trained on each epoch), so a run started before
    this patch and resumed after it meets a different batch list (slimIPL refuses to continue)."""
    @functools.wraps(batch_by_size)
    def batches(indices, *args, **kwargs):
        found = batch_by_size(indices, *args, **kwargs)
        kept = sum(len(b) for b in found)
        indices = np.asarray(indices)
        # Only the dropped tail of fairseq's in-order split is restored; any other layout is left alone.
        if kept < len(indices) and (not found or np.array_equal(np.concatenate(found), indices[:kept])):
            found = list(found) + [indices[kept:]]
        return found

    return batches


def seeded_masks(compute_mask_indices):
    """``compute_mask_indices`` that draws each row's generator seed from numpy's global generator
    (which fairseq seeds with ``common.seed``) when the caller passes none.  fairseq's wav2vec 2.0
    and HuBERT pass none, and each row's mask then comes from ``np.random.default_rng(None)``: fresh
    OS entropy, so two runs with one ``common.seed`` masked different frames and trained different
    models.  The masks' distribution is fairseq's: only where each row's generator is seeded changes."""
    @functools.wraps(compute_mask_indices)
    def masks(shape, padding_mask, *args, **kwargs):
        if kwargs.get("seed") is None and kwargs.get("indices") is None:
            # fairseq seeds row i's generator with hash((seed, epoch, indices[i])) (ints: no hash
            # salt); the rank as the "epoch": every rank's generator has common.seed's state.
            kwargs.update(seed=int(np.random.randint(2**31 - 1)), epoch=rank_and_world()[0],
                          indices=np.arange(shape[0]))
        return compute_mask_indices(shape, padding_mask, *args, **kwargs)

    return masks


# Updates between two calls of malloc_trim: a call costs ~70 ms per ~200 MB it returns (measured
# on a loaded CPU); a joint run's heap grew ~3 MB an update without it.
HEAP_TRIM_UPDATES = 100


def malloc_trim():
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS)."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


def trimmed_heap(train_step, trim, every: int = HEAP_TRIM_UPDATES):
    """fairseq's ``Trainer.train_step`` that calls ``trim(0)`` (glibc's ``malloc_trim``) after every
    ``every``-th update.  glibc returns only the top of its heap to the operating system; memory
    freed elsewhere in it stays resident.  Batches whose shapes change every update (joint CPC + CTC's
    unpadded crops) leave freed blocks all over the heap: a joint run's resident memory grew from
    2.4 to 4.1 GB in 30 minutes, and one malloc_trim(0) on the running process returned 3.1 GB of
    it (docs/design.md, "Memory")."""
    @functools.wraps(train_step)
    def step(self, *args, **kwargs):
        out = train_step(self, *args, **kwargs)
        if self.get_num_updates() % every == 0:
            trim(0)
        return out

    return step


def no_update_past_max(train_step):
    """fairseq's ``Trainer.train_step`` that makes no update once ``optimization.max_update`` is
    reached.  fairseq checks the cap only after a step, so a finished run started again (to resume
    it, or a script re-run over its arms) trains one update more and may keep it as
    checkpoint_best: a supervised-only arm finished at 1,000 of 1,000 updates made update 1,001
    when its script ran again, which was selected best and decoded at 51.25 test CER where the
    1,000-update model had decoded 50.98 (2026-12-05).  The step returns None, fairseq's value for
    a step that made no update; fairseq then validates, saves the unchanged model and stops."""
    @functools.wraps(train_step)
    def step(self, *args, **kwargs):
        cap = self.cfg.optimization.max_update
        if cap and self.get_num_updates() >= cap:
            logger.info("already at optimization.max_update=%d: no further update", cap)
            return None
        return train_step(self, *args, **kwargs)

    return step


def ema_from_weights(load_checkpoint):
    """fairseq's ``Trainer.load_checkpoint`` that, with ``ema.store_ema=true``, starts the EMA from
    the checkpoint's weights when the checkpoint holds no EMA (one trained without it: a supervised
    baseline under ``checkpoint.finetune_from_model``).  fairseq means to do that, but reads the
    weights after it has deleted them from the loaded state: ``KeyError: 'model'`` (fairseq 0.12,
    trainer.py; slimIPL's EMA teacher from a trained baseline, 2026-12-07).  Here the loaded state
    hands fairseq those weights as the checkpoint's EMA, for this load only."""
    @functools.wraps(load_checkpoint)
    def load(self, *args, **kwargs):
        if not self.cfg.ema.store_ema:
            return load_checkpoint(self, *args, **kwargs)
        loader, lent = checkpoint_utils.load_checkpoint_to_cpu, []

        def with_ema(*a, **k):
            state = loader(*a, **k)
            extra = state.get("extra_state")
            if extra is not None and "ema" not in extra and "model" in state:
                logger.info("the checkpoint holds no EMA: the EMA starts from its weights")
                extra["ema"] = state["model"]
                lent.append(extra)
            return state

        checkpoint_utils.load_checkpoint_to_cpu = with_ema
        try:
            return load_checkpoint(self, *args, **kwargs)
        finally:
            checkpoint_utils.load_checkpoint_to_cpu = loader
            for extra in lent:  # fairseq's caller keeps extra_state for the whole run
                extra.pop("ema", None)

    return load


def _layers(fn):
    """The plugin's patch layers on ``fn``, outermost first, and the function under them."""
    layers = []
    while hasattr(fn, "_sslasr_patch"):
        layers.append(fn)
        fn = fn.__wrapped__
    return layers, fn


def _layer(fn, name: str, make):
    """``make(fn)``, marked as the plugin's patch ``name`` (and how to make it again)."""
    wrapped = make(fn)
    wrapped._sslasr_patch, wrapped._sslasr_make = name, make
    return wrapped


def _wrap_once(owner, attr: str, name: str, make) -> None:
    """``owner.attr = make(owner.attr)`` unless the plugin's patch ``name`` is already there.
    Checked by name: fairseq's own decorators also set ``__wrapped__``."""
    if name not in [layer._sslasr_patch for layer in _layers(getattr(owner, attr))[0]]:
        setattr(owner, attr, _layer(getattr(owner, attr), name, make))


def without_patches(owner, attr: str, *names: str) -> None:
    """Take the plugin's patches ``names`` off ``owner.attr`` and keep its others, so that a
    benchmark can run fairseq's own behaviour beside the plugin's (benchmarks/training_memory.py)."""
    layers, fn = _layers(getattr(owner, attr))
    for layer in reversed(layers):
        if layer._sslasr_patch not in names:
            fn = _layer(fn, layer._sslasr_patch, layer._sslasr_make)
    setattr(owner, attr, fn)


def trimmed_before_workers(get_iterator, trim):
    """fairseq's ``EpochBatchIterator._get_iterator_for_epoch`` that calls ``trim(0)`` before it
    makes a data loader with worker processes.  The workers are forked from the training process
    and share its memory copy-on-write; every page the trainer then rewrites becomes the worker's
    own copy, so a worker ends up holding a snapshot of the trainer's heap as it was at the fork,
    free blocks included: 1.6-1.9 GB per worker beside trainers of 1.3-2.6 GB (private dirty
    memory, lowres runs, 2026-12-05).  Freed pages handed back before the fork are not in it."""
    @functools.wraps(get_iterator)
    def iterator(self, *args, **kwargs):
        if self.num_workers > 0:
            trim(0)
        return get_iterator(self, *args, **kwargs)

    return iterator


# The fairseq modules whose models draw masks with compute_mask_indices and no seed.
MASKING_MODULES = ("fairseq.models.wav2vec.wav2vec2", "fairseq.models.hubert.hubert")


def apply() -> None:
    """Install the patches (idempotent)."""
    # torch >= 2.6 loads with weights_only=True, which refuses fairseq's fine-tuned checkpoints
    # ("Unsupported global: fairseq.data.dictionary.Dictionary"): allow exactly the classes they hold.
    torch.serialization.add_safe_globals(SAFE_GLOBALS)
    # fairseq's load_checkpoint_to_cpu passes on torch's bare unpickling error: name the file and the
    # offending global, or say the file is truncated and which checkpoints to resume from.
    _wrap_once(checkpoint_utils, "load_checkpoint_to_cpu", "guarded_loader", guarded_loader)
    # fairseq's save_checkpoint copies checkpoint_N.pt to checkpoint_last.pt in place: a kill during the
    # copy truncates the file a restarted job resumes from; copy to .tmp and rename instead.
    checkpoint_utils.PathManager = AtomicCopyPathManager
    # fairseq's batch_by_size drops a last batch smaller than the required multiple: evaluations
    # lose utterances without a word; keep it.
    _wrap_once(data_utils, "batch_by_size", "keep_remainder_batch", keep_remainder_batch)
    # fairseq's wav2vec 2.0 and HuBERT masks come from fresh OS entropy: draw their seeds from
    # numpy's global generator (seeded by common.seed), so that a seed reproduces its run.
    for name in MASKING_MODULES:
        _wrap_once(importlib.import_module(name), "compute_mask_indices", "seeded_masks", seeded_masks)
    # glibc keeps memory freed inside its heap, and training with shapes that change every update
    # grows by gigabytes: hand it back every HEAP_TRIM_UPDATES updates.
    trim = malloc_trim()
    if trim is not None:
        _wrap_once(trainer.Trainer, "train_step", "trimmed_heap", lambda f: trimmed_heap(f, trim))
        # ... and before data-loader workers are forked, which would otherwise keep a copy of it.
        _wrap_once(iterators.EpochBatchIterator, "_get_iterator_for_epoch", "trimmed_before_workers",
                   lambda f: trimmed_before_workers(f, trim))
    # fairseq's training loop makes one update past max_update when a finished run is started again.
    _wrap_once(trainer.Trainer, "train_step", "no_update_past_max", no_update_past_max)
    # fairseq's load_checkpoint fails to start an EMA from a checkpoint that has none.
    _wrap_once(trainer.Trainer, "load_checkpoint", "ema_from_weights", ema_from_weights)
    # Known-harmless warnings of torch and fairseq, each named in KNOWN_HARMLESS_WARNINGS.
    quiet_known_warnings()
