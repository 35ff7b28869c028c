"""Non-finite losses: the batch is left out of its update and reported; the run goes on.

fairseq stops an fp32 run at the first NaN/Inf gradient (``FloatingPointError``: it writes
``crash.pt`` and re-runs the batch under its NanDetector), and skips fp16 overflows by lowering
the loss scale.  One bad utterance (NaN samples in a float WAV, a batch where a loss diverges)
should cost its batch, not a run of days.  The plugin's tasks check every micro-batch's loss,
and the model's outputs for NaN, before the backward pass:

- a non-finite loss (or one computed from NaN outputs) is replaced by a zero that still
  touches every trainable parameter, so DDP's gradient all-reduce runs on every rank as usual
  and the batch adds nothing to the gradient; its non-finite statistics are logged as 0 (its
  counts stay, so averages never divide by zero) and ``nonfinite`` (a count of such batches)
  is logged;
- a warning names the update, the loss value and the batch's audio files;
- an update in which every batch was non-finite (on every rank) is skipped: no optimizer step,
  so the weights and the optimizer's moments stay as they were;
- after ``task.nonfinite_patience`` such updates in a row the run stops through fairseq's
  ``FloatingPointError`` path (``crash.pt`` + NanDetector) with a message saying what to do.
"""
import bisect
import logging
import math
from typing import List, Optional

import torch
from fairseq.data import ConcatDataset
from fairseq.distributed import utils as distributed_utils

logger = logging.getLogger(__name__)

NONFINITE_PATIENCE_HELP = (
    "stop the run after this many consecutive updates in which every batch had a non-finite loss "
    "(batches with a non-finite loss are always left out of their update and reported; 0: never stop)"
)


def utterance_name(dataset, index: int) -> str:
    """The audio file of a dataset index, through the wrappers the plugin's tasks use."""
    from ..data.two_stream_dataset import TwoStreamDataset

    while dataset is not None:
        if isinstance(dataset, TwoStreamDataset):
            mode, index = dataset._locate(index)
            dataset = dataset.streams[mode]
        elif isinstance(dataset, ConcatDataset):
            part = bisect.bisect_right(dataset.cumulative_sizes, index)
            index -= dataset.cumulative_sizes[part - 1] if part else 0
            dataset = dataset.datasets[part]
        elif getattr(dataset, "fnames", None) is not None:  # fairseq's FileAudioDataset
            name = dataset.fnames[index]
            name = name if isinstance(dataset.fnames, list) else name.as_py()
            return dataset.text_compressor.decompress(name)
        elif getattr(dataset, "audio_names", None) is not None:  # fairseq's HubertDataset
            return dataset.audio_names[index]
        else:
            dataset = getattr(dataset, "dataset", None)  # AddTargetDataset and the like
    return f"#{index}"


def _finite_or_zero(value):
    if torch.is_tensor(value) and value.is_floating_point() and not torch.isfinite(value).all():
        return torch.zeros_like(value)
    if isinstance(value, float) and not math.isfinite(value):
        return 0.0
    return value


def _nan_flags(output) -> list:
    """One 0-dim bool tensor per floating tensor in a model's output (dicts, lists, tuples): any NaN.
    Only NaN: -inf is a legitimate logit (fairseq's CTC models give padded frames -inf)."""
    if torch.is_tensor(output):
        return [torch.isnan(output.detach()).any()] if output.is_floating_point() else []
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (list, tuple)):
        return [flag for item in output for flag in _nan_flags(item)]
    return []


class _Guarded:
    """Calls the criterion; a non-finite loss becomes a zero over the model's parameters."""

    def __init__(self, task: "NonFiniteGuard", criterion, update_num: int, dummy: bool):
        self.task, self.criterion, self.update_num, self.dummy = task, criterion, update_num, dummy

    def __call__(self, model, sample, *args, **kwargs):
        nan_outputs = []
        hook = model.register_forward_hook(lambda module, inputs, output: nan_outputs.extend(_nan_flags(output)))
        try:
            loss, sample_size, log = self.criterion(model, sample, *args, **kwargs)
        finally:
            hook.remove()
        # One host sync for both: a CTC loss with zero_infinity is finite (0) over NaN outputs,
        # while its gradient is NaN.
        finite = not bool(torch.stack([~torch.isfinite(loss.detach()).all(), *nan_outputs]).any())
        self.task._nonfinite_seen(self.update_num, bad=not finite, dummy=self.dummy)
        if finite:
            return loss, sample_size, log
        if not self.dummy:
            self.task._report_nonfinite(loss, sample, self.update_num)
        # 0 * one element of each parameter: every parameter gets an all-zero gradient, and the
        # stand-in is exactly 0 (a sum over a whole fp16 tensor can overflow: inf * 0 is NaN).
        zero = sum(p.reshape(-1)[0] * 0.0 for p in model.parameters() if p.requires_grad)
        log = dict({k: _finite_or_zero(v) for k, v in log.items()}, nonfinite=0 if self.dummy else 1)
        return zero.to(loss.dtype), 0, log


class NonFiniteGuard:
    """Mixin of the plugin's tasks (before the fairseq task in the bases).  Its ``train_step``,
    ``optimizer_step`` and ``reduce_metrics`` wrap the next class's; a task that overrides them
    without calling ``super()`` uses ``guard``, ``skip_nonfinite_update`` and ``log_nonfinite``.
    The config needs ``nonfinite_patience`` (and ``train_subset`` to name files in warnings)."""

    _nf_update: Optional[int] = None
    _nf_counts = (0, 0)  # (non-finite, all) real batches of the update being accumulated
    _nf_streak = 0
    _nf_warned = 0

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False, **kwargs):
        return super().train_step(sample, model, self.guard(criterion, update_num, ignore_grad), optimizer,
                                  update_num, ignore_grad, **kwargs)

    def optimizer_step(self, optimizer, model, update_num):
        if not self.skip_nonfinite_update(model, update_num):
            super().optimizer_step(optimizer, model, update_num)

    def reduce_metrics(self, logging_outputs, criterion):
        super().reduce_metrics(logging_outputs, criterion)
        self.log_nonfinite(logging_outputs)

    def guard(self, criterion, update_num: int, ignore_grad: bool) -> _Guarded:
        return _Guarded(self, criterion, update_num, dummy=ignore_grad)

    def _nonfinite_seen(self, update_num: int, bad: bool, dummy: bool) -> None:
        if self._nf_update != update_num:
            self._nf_update, self._nf_counts = update_num, (0, 0)
        if dummy:
            return
        n_bad, n_all = self._nf_counts
        self._nf_counts = (n_bad + 1, n_all) if bad else (n_bad, n_all + 1)

    def _train_split_dataset(self):
        try:
            return self.datasets.get(self.cfg.train_subset)
        except Exception:  # a config without dataset.train_subset (built outside fairseq's CLI)
            return None

    def _report_nonfinite(self, loss, sample, update_num: int) -> None:
        self._nf_warned += 1
        if self._nf_warned > 100 and self._nf_warned % 100:
            return  # a diverged run warns once per 100 batches after the first 100
        ids = sample.get("id")
        ids = ids.tolist() if torch.is_tensor(ids) else list(ids or [])
        dataset = self._train_split_dataset()
        names = [utterance_name(dataset, i) for i in ids[:8]] if dataset is not None else [f"#{i}" for i in ids[:8]]
        more = f" and {len(ids) - 8} more" if len(ids) > 8 else ""
        value = loss.detach().float().sum().item()
        what = (f"non-finite loss ({value})" if not math.isfinite(value)
                else f"NaN in the model's outputs (loss {value})")
        logger.warning(
            f"update {update_num + 1}: {what} on a batch of "
            f"{len(ids)} utterances ({', '.join(names)}{more}); the batch is left out of the update. If it "
            "recurs for the same files, check them: python -m data_prep.check --data DATA --read-audio; if it "
            "recurs for any batch, the run is diverging: lower the learning rate or raise warm-up"
        )

    def skip_nonfinite_update(self, model, update_num: int) -> bool:
        """True when every batch of this update, on every rank, had a non-finite loss."""
        n_bad, n_all = self._nf_counts if self._nf_update == update_num else (0, 0)
        if torch.distributed.is_available() and torch.distributed.is_initialized() \
                and distributed_utils.get_data_parallel_world_size() > 1:
            device = next(model.parameters()).device
            counts = torch.tensor([n_bad, n_all], dtype=torch.long, device=device)
            counts = distributed_utils.all_reduce(counts, group=distributed_utils.get_data_parallel_group())
            n_bad, n_all = counts.tolist()
        if n_bad == 0 or n_all > 0:
            self._nf_streak = 0
            return False
        self._nf_streak += 1
        patience = self.cfg.nonfinite_patience
        logger.warning(f"update {update_num + 1} skipped: the loss of every batch was non-finite "
                       f"({self._nf_streak} such update(s) in a row)")
        if patience and self._nf_streak >= patience:
            raise FloatingPointError(
                f"the loss was non-finite in every batch of {self._nf_streak} consecutive updates (task."
                "nonfinite_patience): the run has diverged. Resume from an earlier checkpoint with a lower "
                "learning rate (optimization.lr) or longer warm-up, and check the data: python -m data_prep.check "
                "--data DATA --read-audio"
            )
        return True

    @staticmethod
    def log_nonfinite(logging_outputs: List[dict]) -> None:
        from fairseq.logging import metrics

        n = sum(int(log.get("nonfinite", 0)) for log in logging_outputs)
        if n:
            metrics.log_scalar_sum("nonfinite", n, priority=900, round=0)
