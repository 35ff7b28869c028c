"""Adam with one set of moments per loss over the same parameters (joint masked CPC + CTC).

Talnikar et al. (2021) step each loss with its own Adam (moments, LR, clipping); fairseq's
``composite`` optimizer gives each parameter to one sub-optimizer, so this is one torch optimizer
whose ``step(groups={mode})`` updates that mode's moments only (it declares ``supports_groups``).
A parameter without a gradient in a mode's loss is left exactly as it was (docs/design.md,
"Two optimizer states").
"""
import math
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, List

import torch
from fairseq.dataclass import FairseqDataclass
from fairseq.optim import FairseqOptimizer, register_optimizer
from omegaconf import II, OmegaConf

from ..batch_modes import STREAMS as MODES
from ..batch_modes import SUP, UNSUP


def _use_foreach(device: torch.device) -> bool:
    """Multi-tensor kernels on GPUs only: on the CPU torch's foreach ops are slower than a loop
    (torch's own optimizers default to them on CUDA only)."""
    return device.type == "cuda"


@dataclass
class DualAdamConfig(FairseqDataclass):
    adam_betas: Any = field(default=(0.9, 0.98), metadata={"help": "Adam betas (paper: 0.9, 0.98)"})
    adam_eps: float = field(default=1e-6, metadata={"help": "Adam epsilon (paper: 1e-6)"})
    weight_decay: float = field(default=0.01, metadata={"help": "decoupled weight decay, as fairseq's adam (paper: 0.01)"})
    unsup_lr_scale: float = field(
        default=1.0, metadata={"help": "LR of unsupervised updates = scheduled LR x this (paper: 1)"}
    )
    sup_lr_scale: float = field(
        default=0.05,
        metadata={"help": "LR of supervised updates = scheduled LR x this (paper: 1/20, ablation 1/4)"},
    )
    unsup_clip_norm: float = field(
        default=25.0, metadata={"help": "max gradient norm of unsupervised updates, 0 = none (paper: 25)"}
    )
    sup_clip_norm: float = field(
        default=1.0, metadata={"help": "max gradient norm of supervised updates, 0 = none (paper: 1)"}
    )
    shared_state: bool = field(
        default=False,
        metadata={"help": "one set of moments for both losses (the paper's single-optimizer ablation); "
                  "LR scales and clipping stay per mode"},
    )
    lr: List[float] = II("optimization.lr")


@register_optimizer("sslasr_dual_adam", dataclass=DualAdamConfig)
class FairseqDualAdam(FairseqOptimizer):
    def __init__(self, cfg: DualAdamConfig, params):
        super().__init__(cfg)
        self._optimizer = DualAdam(params, **self.optimizer_config)

    @property
    def optimizer_config(self):
        betas = self.cfg.adam_betas
        betas = eval(betas) if isinstance(betas, str) else OmegaConf.to_container(betas) if OmegaConf.is_config(betas) else betas
        return {
            "lr": self.cfg.lr[0] if isinstance(self.cfg.lr, Collection) else self.cfg.lr,
            "betas": tuple(betas),
            "eps": self.cfg.adam_eps,
            "weight_decay": self.cfg.weight_decay,
            "lr_scale": {UNSUP: self.cfg.unsup_lr_scale, SUP: self.cfg.sup_lr_scale},
            "clip_norm": {UNSUP: self.cfg.unsup_clip_norm, SUP: self.cfg.sup_clip_norm},
            "shared_state": self.cfg.shared_state,
        }

    @property
    def supports_memory_efficient_fp16(self):
        return True

    @property
    def supports_flat_params(self):
        return False  # a flat fp32 copy would hide which parameters a mode did not use


class DualAdam(torch.optim.Optimizer):
    """AdamW (decoupled weight decay) with per-mode moments; ``step(groups={"sup"})``."""

    supports_groups = True
    supports_mode_lr_factors = True  # sslasr_dual_schedule gives each mode its own schedule

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.0, lr_scale=None,
                 clip_norm=None, shared_state=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        lr_scale=dict(lr_scale or {m: 1.0 for m in MODES}),
                        clip_norm=dict(clip_norm or {m: 0.0 for m in MODES}), shared_state=shared_state)
        super().__init__(params, defaults)

    def set_mode_lr_factors(self, factors: dict) -> None:
        """Per-mode multipliers of the scheduled LR, on top of ``lr_scale`` (one schedule per loss)."""
        for group in self.param_groups:
            group["lr_factor"] = dict(factors)

    @staticmethod
    def _mode(groups) -> str:
        if groups is None or len(groups) != 1:
            raise ValueError(f"DualAdam.step needs groups={{mode}} with one mode of {MODES}, got {groups!r}")
        (mode,) = groups
        if mode not in MODES:
            raise ValueError(f"unknown DualAdam mode {mode!r}; expected one of {MODES}")
        return mode

    @torch.no_grad()
    def step(self, closure=None, groups=None):
        mode = self._mode(groups)
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                self._step_group(group, mode, params)
        return loss

    def _step_group(self, group, mode: str, params: list) -> None:
        """One mode's AdamW step over the parameters that took part in its loss (on a GPU with
        multi-tensor kernels: a handful of launches per step, not ten per parameter)."""
        grads = [p.grad if p.grad.dtype == torch.float32 else p.grad.float() for p in params]
        # One pass over the gradients and one host sync for all: which parameters took part
        # (a gradient norm of 0 means all zeros) and the mode's total norm for clipping.
        norms = torch.stack(torch._foreach_norm(grads))
        host = torch.cat([norms, torch.linalg.vector_norm(norms).view(1)]).tolist()
        used, norm = host[:-1], host[-1]
        max_norm = group["clip_norm"].get(mode, 0.0)
        clip = min(1.0, max_norm / (norm + 1e-6)) if max_norm > 0 else 1.0
        keep = [i for i, u in enumerate(used) if u > 0]
        if not keep:
            return
        params, grads = [params[i] for i in keep], [grads[i] for i in keep]
        key = "shared" if group["shared_state"] else mode
        states = [self._state(p, key) for p in params]
        steps = []
        for state in states:  # step counts live on the CPU: no device sync to read them
            state["step"] += 1
            steps.append(float(state["step"]))
        lr = group["lr"] * group["lr_scale"][mode] * group.get("lr_factor", {}).get(mode, 1.0)
        beta1, beta2 = group["betas"]
        exp_avgs = [state["exp_avg"] for state in states]
        exp_avg_sqs = [state["exp_avg_sq"] for state in states]
        p32 = [p.data if p.dtype == torch.float32 else p.data.float() for p in params]
        # AdamW's update lr/c1 * m / (sqrt(v)/s + eps), with c1, c2 = 1 - beta^step and s = sqrt(c2),
        # written as lr*s/c1 * m / (sqrt(v) + eps*s): the same value without a pass dividing by s.
        # Clipping is folded into the moment updates: (c g) and (c g)^2.
        root_c2 = [math.sqrt(1 - beta2**k) for k in steps]
        eps = [group["eps"] * s for s in root_c2]
        step_size = [-lr * s / (1 - beta1**k) for s, k in zip(root_c2, steps)]
        decay = 1 - lr * group["weight_decay"]
        if _use_foreach(params[0].device):  # multi-tensor kernels: a few launches per step
            torch._foreach_mul_(exp_avgs, beta1)
            torch._foreach_add_(exp_avgs, grads, alpha=(1 - beta1) * clip)
            torch._foreach_mul_(exp_avg_sqs, beta2)
            torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=(1 - beta2) * clip * clip)
            denom = torch._foreach_sqrt(exp_avg_sqs)
            torch._foreach_add_(denom, eps)
            if decay != 1:
                torch._foreach_mul_(p32, decay)
            torch._foreach_addcdiv_(p32, exp_avgs, denom, step_size)
        else:  # the CPU has no launch cost, and torch's foreach ops are slower there (as torch's own default)
            for g, m, v, w, e, a in zip(grads, exp_avgs, exp_avg_sqs, p32, eps, step_size):
                m.mul_(beta1).add_(g, alpha=(1 - beta1) * clip)
                v.mul_(beta2).addcmul_(g, g, value=(1 - beta2) * clip * clip)
                if decay != 1:
                    w.mul_(decay)
                w.addcdiv_(m, v.sqrt().add_(e), value=a)
        for p, w in zip(params, p32):
            if w is not p.data:
                p.data.copy_(w)

    def _state(self, p, key: str) -> dict:
        param_state = self.state[p]
        state = param_state.get(key)
        if state is None:
            state = param_state[key] = {
                "step": torch.zeros((), dtype=torch.float32),
                "exp_avg": torch.zeros_like(p, dtype=torch.float32),
                "exp_avg_sq": torch.zeros_like(p, dtype=torch.float32),
            }
        if state["step"].device.type != "cpu":  # written by an earlier version, on the device
            state["step"] = state["step"].cpu()
        for name in ("exp_avg", "exp_avg_sq"):  # a checkpoint loads them in the parameter's dtype
            if state[name].dtype != torch.float32:
                state[name] = state[name].float()
        return state
