"""Adam with one set of moments per loss over the same parameters (joint masked CPC + CTC).

Talnikar et al. (2021) alternate unsupervised and supervised updates of one network with two
Adam optimizers: separate first/second moments, learning rates (20:1) and gradient clipping
(25 / 1) per loss; one shared Adam was clearly worse.  fairseq's ``composite`` optimizer
cannot do this (it gives each parameter to one sub-optimizer), so this is one torch optimizer
whose ``step(groups={mode})`` updates the moments of that mode only.  It goes through
fairseq's optimizer machinery unchanged: the LR scheduler sets one scheduled LR and each mode
scales it; the fp16/bf16 wrappers forward ``groups``; both moment sets are saved in
``last_optimizer_state``.

A parameter takes no part in a mode's step when its gradient is missing or entirely zero
(the CTC head in a contrastive update; fairseq's fp16 master copies and legacy DDP zero-fill
missing gradients): its moments, step count and weight are left exactly as they were.
"""
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, List

import torch
from fairseq.dataclass import FairseqDataclass
from fairseq.optim import FairseqOptimizer, register_optimizer
from omegaconf import II, OmegaConf

MODES = ("unsup", "sup")


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
            "lr_scale": {"unsup": self.cfg.unsup_lr_scale, "sup": self.cfg.sup_lr_scale},
            "clip_norm": {"unsup": self.cfg.unsup_clip_norm, "sup": self.cfg.sup_clip_norm},
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

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.0, lr_scale=None,
                 clip_norm=None, shared_state=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        lr_scale=dict(lr_scale or {m: 1.0 for m in MODES}),
                        clip_norm=dict(clip_norm or {m: 0.0 for m in MODES}), shared_state=shared_state)
        super().__init__(params, defaults)

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
            clip_coef = self._clip_coef(params, group["clip_norm"].get(mode, 0.0))
            lr = group["lr"] * group["lr_scale"][mode]
            key = "shared" if group["shared_state"] else mode
            beta1, beta2 = group["betas"]
            for p in params:
                self._update(p, self.state[p], key, lr, beta1, beta2, group["eps"], group["weight_decay"], clip_coef)
        return loss

    @staticmethod
    def _clip_coef(params, max_norm: float):
        if max_norm <= 0 or not params:
            return None
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad.float()) for p in params]))
        return (max_norm / (norm + 1e-6)).clamp(max=1.0)

    @staticmethod
    def _update(p, param_state, key, lr, beta1, beta2, eps, weight_decay, clip_coef):
        grad = p.grad.float()
        if clip_coef is not None:
            grad = grad * clip_coef.to(grad.device)
        # 1 where this parameter took part in the loss, 0 where its gradient is all zeros;
        # a tensor, so that no device sync is needed to skip it.
        used = grad.ne(0).any().float()
        state = param_state.get(key)
        if state is None:
            state = param_state[key] = {
                "step": torch.zeros((), dtype=torch.float32, device=p.device),
                "exp_avg": torch.zeros_like(p, dtype=torch.float32),
                "exp_avg_sq": torch.zeros_like(p, dtype=torch.float32),
            }
        for name in ("exp_avg", "exp_avg_sq"):  # a checkpoint loads them in the parameter's dtype
            if state[name].dtype != torch.float32:
                state[name] = state[name].float()
        step = state["step"] = state["step"].to(p.device) + used
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.mul_(1 - (1 - beta1) * used).add_(grad, alpha=1 - beta1)
        exp_avg_sq.mul_(1 - (1 - beta2) * used).addcmul_(grad, grad, value=1 - beta2)
        done = step.clamp(min=1)
        denom = (exp_avg_sq / (1 - beta2**done)).sqrt_().add_(eps)
        update = exp_avg / (1 - beta1**done) / denom

        p32 = p.data.float() if p.dtype != torch.float32 else p.data
        p32.mul_(1 - lr * weight_decay * used)
        p32.add_(update * used, alpha=-lr)
        if p32 is not p.data:
            p.data.copy_(p32)
