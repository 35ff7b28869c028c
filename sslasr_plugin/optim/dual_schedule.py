"""One LR schedule per loss for ``sslasr_dual_adam`` (joint masked CPC + CTC).

The authors' code (wav2letter ``masked_cpc``, ``recipes/joint_training/cpc/Train.cpp``,
``lrSched``) gives the contrastive loss a linear warm-up then a linear decay to
``lr_ld_final`` (0.1) x its LR at the last update, and CTC a linear warm-up then a constant LR.
Both count the run's total updates (contrastive and CTC together, fairseq's ``num_updates``),
CTC from ``supdelay`` on (here ``sup_start_updates``; the two-stage baseline's pre-training).
fairseq drives this scheduler as any other: it sets the peak LR (``optimization.lr``) and hands
each mode's factor to the optimizer, which multiplies it into that mode's LR (``lr_scale``, the
LR ratio, stays as it is).
"""
from dataclasses import dataclass, field
from typing import List

from fairseq.dataclass import FairseqDataclass
from fairseq.optim.lr_scheduler import FairseqLRScheduler, register_lr_scheduler
from omegaconf import II


@dataclass
class DualScheduleConfig(FairseqDataclass):
    unsup_warmup_updates: int = field(
        default=20000, metadata={"help": "linear warm-up of the contrastive LR, in total updates (paper code: 20k)"}
    )
    unsup_final_lr_scale: float = field(
        default=0.1, metadata={"help": "contrastive LR at max_update / its peak, reached linearly after the "
                               "warm-up (paper code: lr_ld_final 0.1); 1 = constant"}
    )
    sup_warmup_updates: int = field(
        default=20000, metadata={"help": "linear warm-up of the CTC LR, in updates from sup_start_updates "
                                 "(paper code: supwarmup 20k)"}
    )
    sup_final_lr_scale: float = field(
        default=1.0, metadata={"help": "CTC LR at max_update / its peak (paper code: 1, constant after warm-up)"}
    )
    sup_start_updates: int = field(
        default=0, metadata={"help": "total updates before the CTC schedule starts counting (paper code: supdelay; "
                             "the two-stage baseline: its pre-training updates)"}
    )
    max_update: int = II("optimization.max_update")
    lr: List[float] = II("optimization.lr")


def warmup_then_linear(update: int, warmup: int, total: int, final_scale: float) -> float:
    """LR factor of the ``update``-th update (1-based): ``update / warmup`` during the warm-up,
    then linear from 1 to ``final_scale`` at ``total``, as ``lrSched`` in the authors' code."""
    if update <= 0:
        return 0.0
    if update <= warmup:
        return update / warmup
    if final_scale == 1.0 or total <= warmup:
        return 1.0
    return final_scale + (1.0 - final_scale) * max(total - update, 0) / (total - warmup)


@register_lr_scheduler("sslasr_dual_schedule", dataclass=DualScheduleConfig)
class DualSchedule(FairseqLRScheduler):
    def __init__(self, cfg: DualScheduleConfig, optimizer):
        super().__init__(cfg, optimizer)
        if not getattr(optimizer.optimizer, "supports_mode_lr_factors", False):
            raise ValueError("lr_scheduler sslasr_dual_schedule schedules each loss of sslasr_dual_adam: set "
                             f"optimizer._name=sslasr_dual_adam (got {type(optimizer.optimizer).__name__})")
        if cfg.max_update <= 0 and 1.0 not in (cfg.unsup_final_lr_scale, cfg.sup_final_lr_scale):
            raise ValueError("sslasr_dual_schedule decays to final_lr_scale at optimization.max_update: set it")
        self.peak = cfg.lr[0]
        self.step_update(0)

    def factors(self, num_updates: int) -> dict:
        """Each mode's factor for the update after ``num_updates`` done."""
        cfg, update = self.cfg, num_updates + 1
        return {
            "unsup": warmup_then_linear(update, cfg.unsup_warmup_updates, cfg.max_update, cfg.unsup_final_lr_scale),
            "sup": warmup_then_linear(update - cfg.sup_start_updates, cfg.sup_warmup_updates,
                                      cfg.max_update - cfg.sup_start_updates, cfg.sup_final_lr_scale),
        }

    def step_update(self, num_updates):
        factors = self.factors(num_updates)
        self.optimizer.set_lr(self.peak)
        self.optimizer.optimizer.set_mode_lr_factors(factors)
        return self.peak * factors["unsup"]
