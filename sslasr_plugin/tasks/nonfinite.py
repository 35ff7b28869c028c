"""Non-finite losses cost their batch, not the run.

The plugin's tasks check every micro-batch's loss, the outputs of the modules the criterion
calls and the batch's input, before the backward pass: a bad batch's loss becomes an exact zero and is reported with
its audio files; an update whose every batch was bad (on every rank) is skipped, and
``task.nonfinite_patience`` such updates in a row stop the run through fairseq's
``FloatingPointError`` path.  The reasoning and limits are in docs/design.md ("Non-finite losses").
"""
import logging
import math
from typing import List, Optional

import torch
from fairseq.distributed import utils as distributed_utils
from fairseq.optim.amp_optimizer import AMPOptimizer

from ..data.utterances import utterance_name
from ..parallel import rank_and_world

logger = logging.getLogger(__name__)

NONFINITE_PATIENCE_HELP = (
    "stop the run after this many consecutive updates in which every batch had a non-finite loss "
    "(batches with a non-finite loss are always left out of their update and reported; 0: never stop)"
)


def _finite_or_zero(value):
    if torch.is_tensor(value) and value.is_floating_point() and not torch.isfinite(value).all():
        return torch.zeros_like(value)
    if isinstance(value, float) and not math.isfinite(value):
        return 0.0
    return value


def _flags(value, bad) -> list:
    """``bad(tensor)`` (a 0-dim bool tensor) for every floating tensor in ``value``, walking dicts,
    lists and tuples; no host sync."""
    if torch.is_tensor(value):
        return [bad(value.detach())] if value.is_floating_point() else []
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [flag for item in value for flag in _flags(item, bad)]
    return []


def _has_nan(tensor):
    """Outputs are checked for NaN only: -inf is a legitimate logit (fairseq's CTC models give
    padded frames -inf)."""
    return torch.isnan(tensor).any()


def _not_finite(tensor):
    """Losses and the batch's input are checked for NaN and Inf.  The input is checked as well as
    the outputs: wav2vec 2.0's time mask replaces masked frames by its mask embedding, so NaN audio
    under the mask gives finite outputs and a finite loss, while the front end's weight gradients
    (0 x NaN) are NaN."""
    return ~torch.isfinite(tensor).all()


def _any_of_each(groups, device) -> List[bool]:
    """For each list of flags, whether any is set; one host sync for all the lists."""
    none = torch.zeros((), dtype=torch.bool, device=device)
    return torch.stack([torch.stack([f.to(device) for f in g]).any() if g else none for g in groups]).tolist()


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
    if rank_and_world()[1] == 1:
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


def skip_step(optimizer) -> None:
    """What an update without an optimizer step owes the optimizer: an AMP loss scaler that
    unscaled the update's gradients is updated at the same scale, or its next update fails
    ("unscale_() has already been called")."""
    if isinstance(optimizer, AMPOptimizer):
        optimizer.scaler.update(optimizer.scaler.get_scale())


class _Guarded:
    """Calls the criterion; a non-finite loss becomes an exact zero (``zero_loss``)."""

    def __init__(self, task: "NonFiniteGuard", criterion, update_num: int, dummy: bool):
        self.task, self.criterion, self.update_num, self.dummy = task, criterion, update_num, dummy

    def __call__(self, model, sample, *args, **kwargs):
        nan_outputs = []
        hooks = [m.register_forward_hook(lambda module, inputs, output: nan_outputs.extend(_flags(output, _has_nan)))
                 for m in self.task.nonfinite_watched(model, sample)]
        try:
            loss, sample_size, log = self.criterion(model, sample, *args, **kwargs)
        finally:
            for hook in hooks:
                hook.remove()
        # A CTC loss with zero_infinity is finite (0) over NaN outputs, and masked NaN input frames
        # leave loss and outputs finite while the gradient is NaN: all three are checked.
        net_input = sample.get("net_input") if isinstance(sample, dict) else None
        bad_loss, bad_output, bad_input = _any_of_each(
            (_flags(loss, _not_finite), nan_outputs, _flags(net_input, _not_finite)), loss.device)
        finite = not (bad_loss or bad_output or bad_input)
        self.task._nonfinite_seen(self.update_num, bad=not finite, dummy=self.dummy)
        if finite:
            return loss, sample_size, dict(log, nonfinite=0)
        if not self.dummy:
            self.task._report_nonfinite(loss, sample, self.update_num, bad_input=bad_input)
        log = dict({k: _finite_or_zero(v) for k, v in log.items()}, nonfinite=0 if self.dummy else 1)
        return zero_loss(model, loss.dtype, loss.device), 0, log


class NonFiniteGuard:
    """Mixin of the plugin's tasks (before the fairseq task in the bases), applied once: its
    ``train_step``, ``optimizer_step`` and ``reduce_metrics`` wrap the next class's.  Hooks:
    ``nonfinite_watched`` (the modules the criterion calls), ``utterance_names`` (for warnings) and
    ``take_step`` (the optimizer step of an update that is not skipped).  The config needs
    ``nonfinite_patience`` (and ``train_subset`` to name files in warnings)."""

    _nf_update: Optional[int] = None
    _nf_counts = (0, 0)  # (non-finite, all) real batches of the update being accumulated
    _nf_streak = 0
    _nf_warned = 0

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False, **kwargs):
        guarded = _Guarded(self, criterion, update_num, dummy=ignore_grad)
        return super().train_step(sample, model, guarded, optimizer, update_num, ignore_grad, **kwargs)

    def optimizer_step(self, optimizer, model, update_num):
        if not self._skip_nonfinite_update(model, update_num, optimizer):
            self.take_step(optimizer, model, update_num)

    def take_step(self, optimizer, model, update_num):
        """The optimizer step of an update with at least one finite batch."""
        super().optimizer_step(optimizer, model, update_num)

    def reduce_metrics(self, logging_outputs, criterion):
        super().reduce_metrics(logging_outputs, criterion)
        self.log_nonfinite(logging_outputs)

    def nonfinite_watched(self, model, sample) -> list:
        """The modules whose outputs are checked for NaN: those the criterion calls."""
        return [model]

    def utterance_names(self, ids: List[int]) -> List[str]:
        """The audio files of the training split's ``ids``."""
        try:
            dataset = self.datasets.get(self.cfg.train_subset)
        except Exception:  # a config without dataset.train_subset (built outside fairseq's CLI)
            dataset = None
        return [utterance_name(dataset, i) if dataset is not None else f"#{i}" for i in ids]

    def _nonfinite_seen(self, update_num: int, bad: bool, dummy: bool) -> None:
        if self._nf_update != update_num:
            self._nf_update, self._nf_counts = update_num, (0, 0)
        if dummy:
            return
        n_bad, n_all = self._nf_counts
        self._nf_counts = (n_bad + 1, n_all) if bad else (n_bad, n_all + 1)

    def _report_nonfinite(self, loss, sample, update_num: int, bad_input: bool = False) -> None:
        self._nf_warned += 1
        if self._nf_warned > 100 and self._nf_warned % 100:
            return  # a diverged run warns once per 100 batches after the first 100
        ids = sample.get("id")
        ids = ids.tolist() if torch.is_tensor(ids) else list(ids or [])
        names = self.utterance_names(ids[:8])
        more = f" and {len(ids) - 8} more" if len(ids) > 8 else ""
        value = loss.detach().float().sum().item()
        what = (f"non-finite loss ({value})" if not math.isfinite(value)
                else f"NaN or Inf in the batch's input (loss {value})" if bad_input
                else f"NaN in the model's outputs (loss {value})")
        logger.warning(
            f"update {update_num + 1}: {what} on a batch of "
            f"{len(ids)} utterances ({', '.join(names)}{more}); the batch is left out of the update. If it "
            "recurs for the same files, check them: python -m data_prep.check --data DATA --read-audio; if it "
            "recurs for any batch, the run is diverging: lower the learning rate or raise warm-up"
        )

    def _skip_nonfinite_update(self, model, update_num: int, optimizer) -> bool:
        """True when every batch of this update, on every rank, had a non-finite loss (the step is
        then skipped: ``skip_step``)."""
        n_bad, n_all = self._nf_counts if self._nf_update == update_num else (0, 0)
        if rank_and_world()[1] > 1:
            device = next(model.parameters()).device
            counts = torch.tensor([n_bad, n_all], dtype=torch.long, device=device)
            counts = distributed_utils.all_reduce(counts, group=distributed_utils.get_data_parallel_group())
            n_bad, n_all = counts.tolist()
        if n_bad == 0 or n_all > 0:
            self._nf_streak = 0
            return False
        self._nf_streak += 1
        skip_step(optimizer)
        patience = self.cfg.nonfinite_patience
        logger.warning(f"update {update_num + 1} skipped: every batch was non-finite (loss, outputs or input) "
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
