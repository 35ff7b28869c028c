"""One LR schedule per loss for ``sslasr_dual_adam`` (joint masked CPC + CTC).

The authors' code (wav2letter ``masked_cpc``, ``recipes/joint_training/cpc/Train.cpp``,
``lrSched``) gives the contrastive loss a linear warm-up then a linear decay to ``lr_ld_final``
(0.1) x its LR at the last update, and CTC a linear warm-up then a constant LR.  Both count the
run's total updates (contrastive and CTC together, fairseq's ``num_updates``), CTC from
``supdelay`` on (here ``sup_start_updates``; the two-stage baseline's pre-training).

The contrastive schedule takes fairseq's ``tri_stage`` options (warm-up, hold, decay as
``phase_ratio`` of ``max_update`` or as steps; ``init_lr_scale``, ``final_lr_scale``) with a linear
decay as the authors'; the CTC schedule has its own ``sup_*`` ones.  So a config written for
``tri_stage`` switches to this scheduler by its ``_name``.  fairseq drives it as any other: it sets
the peak LR (``optimization.lr``) and hands each mode's factor to the optimizer, which multiplies
it into that mode's LR (``lr_scale``, the LR ratio, stays as it is).
"""
from dataclasses import dataclass, field
from typing import Optional, Tuple

from fairseq.optim.lr_scheduler import FairseqLRScheduler, register_lr_scheduler
from fairseq.optim.lr_scheduler.tri_stage_lr_scheduler import TriStageLRScheduleConfig

from ..batch_modes import SUP, UNSUP


@dataclass
class DualScheduleConfig(TriStageLRScheduleConfig):
    sup_phase_ratio: Tuple[float, float, float] = field(
        default=(0.04, 0.96, 0.0),
        metadata={"help": "CTC schedule: warm-up, hold and linear-decay fractions of the updates from "
                  "sup_start_updates to max_update (paper code: 20k of 500k warm-up, then constant)"},
    )
    sup_final_lr_scale: float = field(
        default=1.0, metadata={"help": "CTC LR after its decay / its peak (paper code: no decay)"}
    )
    sup_start_updates: int = field(
        default=0, metadata={"help": "total updates before the CTC schedule starts counting (paper code: supdelay; "
                             "the two-stage baseline: its pre-training updates)"}
    )


def stages(phase_ratio, total: int) -> Tuple[int, int, int]:
    return tuple(int(total * r) for r in phase_ratio)


def warmup_hold_linear(update: int, steps: Tuple[int, int, int], init_scale: float, final_scale: float) -> float:
    """LR factor of the ``update``-th update (1-based) as ``lrSched`` in the authors' code: linear
    from ``init_scale`` to 1 over the warm-up (1/warmup of the way per update), 1 while held, then
    linear to ``final_scale`` at the end of the decay, and ``final_scale`` after it."""
    warmup, hold, decay = steps
    if update <= 0:
        return 0.0
    if update <= warmup:
        return init_scale + (1.0 - init_scale) * update / warmup
    if update <= warmup + hold:
        return 1.0
    if update <= warmup + hold + decay:
        return final_scale + (1.0 - final_scale) * (warmup + hold + decay - update) / decay
    return final_scale


@register_lr_scheduler("sslasr_dual_schedule", dataclass=DualScheduleConfig)
class DualSchedule(FairseqLRScheduler):
    def __init__(self, cfg: DualScheduleConfig, optimizer):
        super().__init__(cfg, optimizer)
        if not getattr(optimizer.optimizer, "supports_mode_lr_factors", False):
            raise ValueError("lr_scheduler sslasr_dual_schedule schedules each loss of sslasr_dual_adam: set "
                             f"optimizer._name=sslasr_dual_adam (got {type(optimizer.optimizer).__name__})")
        if cfg.max_update <= 0 and (cfg.phase_ratio is not None or cfg.sup_phase_ratio is not None):
            raise ValueError("sslasr_dual_schedule: phase ratios are fractions of optimization.max_update; set it")
        self.peak = cfg.lr[0]
        self.unsup_steps = (stages(cfg.phase_ratio, cfg.max_update) if cfg.phase_ratio is not None
                            else (cfg.warmup_steps, cfg.hold_steps, cfg.decay_steps))
        self.sup_steps = stages(cfg.sup_phase_ratio, cfg.max_update - cfg.sup_start_updates)
        self.step_update(0)

    def factors(self, num_updates: int) -> dict:
        """Each mode's factor for the update after ``num_updates`` done."""
        cfg, update = self.cfg, num_updates + 1
        return {
            UNSUP: warmup_hold_linear(update, self.unsup_steps, cfg.init_lr_scale, cfg.final_lr_scale),
            SUP: warmup_hold_linear(update - cfg.sup_start_updates, self.sup_steps, cfg.init_lr_scale,
                                      cfg.sup_final_lr_scale),
        }

    def step_update(self, num_updates):
        factors = self.factors(num_updates)
        self.optimizer.set_lr(self.peak)
        self.optimizer.optimizer.set_mode_lr_factors(factors)
        return self.peak * factors[UNSUP]
