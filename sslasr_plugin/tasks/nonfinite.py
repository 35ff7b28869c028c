"""Non-finite losses: the batch is left out of its update and reported; the run goes on.

fairseq stops an fp32 run at the first NaN/Inf gradient (``FloatingPointError``: it writes
``crash.pt`` and re-runs the batch under its NanDetector), and skips fp16 overflows by lowering
the loss scale.  One bad utterance (NaN samples in a float WAV, a batch where a loss diverges)
should cost its batch, not a run of days.  The plugin's tasks check every micro-batch's loss,
and the model's outputs for NaN, before the backward pass:

- a non-finite loss (or one computed from NaN outputs) is replaced by an exact zero: on one
  process a zero that touches no parameter (parameters without a gradient, such as a frozen
  encoder, keep none, so the optimizer leaves them alone); with several ranks a zero over every
  trainable parameter, so DDP's gradient all-reduce runs on every rank as usual.  The batch adds
  nothing to the gradient; its non-finite statistics are logged as 0 (its counts stay, so
  averages never divide by zero).  Every batch's log carries ``nonfinite`` (1 for such a batch,
  else 0: the same keys on every rank, which fairseq's summed-statistics all-reduce needs);
- a warning names the update, the loss value and the batch's audio files;
- an update in which every batch was non-finite (on every rank) is skipped: no optimizer step,
  so the weights and the optimizer's moments stay as they were (an AMP loss scaler is reset
  for the next update).  It still counts as an update: ``num_updates``, the LR schedule, EMA,
  the joint/slimIPL schedules and ``max_update`` advance as for a taken one, alike on every rank;
- after ``task.nonfinite_patience`` such updates in a row the run stops through fairseq's
  ``FloatingPointError`` path (``crash.pt`` + NanDetector) with a message saying what to do.

Not supported: DDP with ``ddp_backend=c10d`` (or ``pytorch_ddp``) and
``find_unused_parameters=true``, whose reducer refuses gradients for parameters the forward
pass did not use; a bad batch there stops the run with a message (the plugin's configs use
``legacy_ddp``).
"""
import bisect
import logging
import math
from typing import List, Optional

import torch
from fairseq.data import ConcatDataset
from fairseq.distributed import utils as distributed_utils
from fairseq.optim.amp_optimizer import AMPOptimizer

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


def _data_parallel_world_size() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return distributed_utils.get_data_parallel_world_size()
    return 1


def _find_unused_ddp(model) -> bool:
    """Whether ``model`` is (or wraps, as fairseq's ModuleProxyWrapper does) a torch DDP module
    that looks for unused parameters."""
    while model is not None:
        if isinstance(model, torch.nn.parallel.DistributedDataParallel):
            return bool(model.find_unused_parameters)
        model = getattr(model, "module", None)
    return False


def zero_loss(model, dtype: torch.dtype, device) -> torch.Tensor:
    """The stand-in for a non-finite loss: exactly 0, with a backward pass that changes nothing.

    One process: a leaf zero; no parameter gets a gradient it would not have had.  Several ranks:
    0 * one element of each trainable parameter, so every parameter gets an all-zero gradient and
    DDP's all-reduce runs as on the other ranks (exactly 0 in fp16 too: a sum over a whole fp16
    tensor can overflow, and inf * 0 is NaN)."""
    if _data_parallel_world_size() == 1:
        # not the leaf itself: fairseq scales dummy batches' losses in place (loss *= 0)
        return torch.zeros((), dtype=dtype, device=device, requires_grad=True).clone()
    if _find_unused_ddp(model):
        raise FloatingPointError(
            "a batch had a non-finite loss, and under DDP with find_unused_parameters=true it cannot be left "
            "out of the update (the reducer refuses gradients for parameters the forward pass did not use): "
            "use distributed_training.ddp_backend=legacy_ddp, or find_unused_parameters=false, to have such "
            "batches skipped and reported; check the data: python -m data_prep.check --data DATA --read-audio"
        )
    return sum(p.reshape(-1)[0] * 0.0 for p in model.parameters() if p.requires_grad).to(dtype)


class _Guarded:
    """Calls the criterion; a non-finite loss becomes an exact zero (``zero_loss``)."""

    def __init__(self, task: "NonFiniteGuard", criterion, update_num: int, dummy: bool):
        self.task, self.criterion, self.update_num, self.dummy = task, criterion, update_num, dummy

    def __call__(self, model, sample, *args, **kwargs):
        nan_outputs = []
        hooks = [m.register_forward_hook(lambda module, inputs, output: nan_outputs.extend(_nan_flags(output)))
                 for m in self.task.nonfinite_watched(model, sample)]
        try:
            loss, sample_size, log = self.criterion(model, sample, *args, **kwargs)
        finally:
            for hook in hooks:
                hook.remove()
        # One host sync for both: a CTC loss with zero_infinity is finite (0) over NaN outputs,
        # while its gradient is NaN.
        finite = not bool(torch.stack([~torch.isfinite(loss.detach()).all(), *nan_outputs]).any())
        self.task._nonfinite_seen(self.update_num, bad=not finite, dummy=self.dummy)
        if finite:
            return loss, sample_size, dict(log, nonfinite=0)
        if not self.dummy:
            self.task._report_nonfinite(loss, sample, self.update_num)
        log = dict({k: _finite_or_zero(v) for k, v in log.items()}, nonfinite=0 if self.dummy else 1)
        return zero_loss(model, loss.dtype, loss.device), 0, log


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
        if not self.skip_nonfinite_update(model, update_num, optimizer):
            super().optimizer_step(optimizer, model, update_num)

    def reduce_metrics(self, logging_outputs, criterion):
        super().reduce_metrics(logging_outputs, criterion)
        self.log_nonfinite(logging_outputs)

    def guard(self, criterion, update_num: int, ignore_grad: bool) -> _Guarded:
        return _Guarded(self, criterion, update_num, dummy=ignore_grad)

    def nonfinite_watched(self, model, sample) -> list:
        """The modules whose outputs are checked for NaN: those the criterion calls."""
        return [model]

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

    def skip_nonfinite_update(self, model, update_num: int, optimizer=None) -> bool:
        """True when every batch of this update, on every rank, had a non-finite loss.  Pass the
        optimizer: an AMP loss scaler that unscaled this update's gradients is reset, or its next
        update fails ("unscale_() has already been called")."""
        n_bad, n_all = self._nf_counts if self._nf_update == update_num else (0, 0)
        if _data_parallel_world_size() > 1:
            device = next(model.parameters()).device
            counts = torch.tensor([n_bad, n_all], dtype=torch.long, device=device)
            counts = distributed_utils.all_reduce(counts, group=distributed_utils.get_data_parallel_group())
            n_bad, n_all = counts.tolist()
        if n_bad == 0 or n_all > 0:
            self._nf_streak = 0
            return False
        self._nf_streak += 1
        if isinstance(optimizer, AMPOptimizer):  # what step() would have done, at the same scale
            optimizer.scaler.update(optimizer.scaler.get_scale())
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
