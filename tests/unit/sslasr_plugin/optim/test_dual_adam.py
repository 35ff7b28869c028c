"""sslasr_dual_adam: per-mode Adam moments over shared parameters."""
import copy

import pytest
import torch
from fairseq.dataclass.configs import FairseqConfig
from fairseq.optim.fp16_optimizer import FP16Optimizer
from omegaconf import OmegaConf

from sslasr_plugin.optim import dual_adam
from sslasr_plugin.optim.dual_adam import DualAdam, DualAdamConfig, FairseqDualAdam


@pytest.fixture(autouse=True, params=[False, True], ids=["loop", "foreach"])
def kernels(request, monkeypatch):
    """Every test runs with the per-tensor loop (CPU) and the multi-tensor path (GPU), here on the CPU."""
    monkeypatch.setattr(dual_adam, "_use_foreach", lambda device: request.param)


def _params(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(4, 3, generator=g)), torch.nn.Parameter(torch.randn(3, generator=g))]


def _grads(n, seed):
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(4, 3, generator=g), torch.randn(3, generator=g)] for _ in range(n)]


def _set(params, grads):
    for p, g in zip(params, grads):
        p.grad = None if g is None else g.clone()


def test_one_mode_is_adamw_at_its_scaled_lr():
    ours, ref = _params(), _params()
    opt = DualAdam(ours, lr=0.01, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.1,
                   lr_scale={"unsup": 1.0, "sup": 0.25})
    adamw = torch.optim.AdamW(ref, lr=0.0025, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.1)
    for grads in _grads(5, seed=1):
        _set(ours, grads)
        _set(ref, grads)
        opt.step(groups={"sup"})
        adamw.step()
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert float(opt.state[ours[0]]["sup"]["step"]) == 5
    assert "unsup" not in opt.state[ours[0]]


def test_modes_keep_independent_moments():
    """Interleaving sup and unsup steps gives each mode exactly the moments of its own steps."""
    params = _params()
    opt = DualAdam(params, lr=0.01, lr_scale={"unsup": 1.0, "sup": 1.0})
    sup_grads, unsup_grads = _grads(3, seed=2), _grads(3, seed=3)
    for gs, gu in zip(sup_grads, unsup_grads):
        _set(params, gs)
        opt.step(groups={"sup"})
        before = copy.deepcopy(opt.state[params[0]]["sup"])
        _set(params, gu)
        opt.step(groups={"unsup"})
        after = opt.state[params[0]]["sup"]
        for k in before:  # an unsup step leaves the sup moments bit for bit
            assert torch.equal(before[k], after[k])
    for mode, grads in (("sup", sup_grads), ("unsup", unsup_grads)):
        m = torch.zeros(4, 3)
        v = torch.zeros(4, 3)
        for g in grads:
            m = 0.9 * m + 0.1 * g[0]
            v = 0.98 * v + 0.02 * g[0] ** 2
        torch.testing.assert_close(opt.state[params[0]][mode]["exp_avg"], m)
        torch.testing.assert_close(opt.state[params[0]][mode]["exp_avg_sq"], v)


def test_shared_state_is_one_adam_with_per_mode_lr():
    ours, ref = _params(), _params()
    opt = DualAdam(ours, lr=0.01, lr_scale={"unsup": 1.0, "sup": 0.1}, shared_state=True)
    adamw = torch.optim.AdamW(ref, lr=0.01, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.0)
    for i, grads in enumerate(_grads(6, seed=4)):
        mode = ("unsup", "sup")[i % 2]
        adamw.param_groups[0]["lr"] = 0.01 if mode == "unsup" else 0.001
        _set(ours, grads)
        _set(ref, grads)
        opt.step(groups={mode})
        adamw.step()
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert set(opt.state[ours[0]]) == {"shared"}


@pytest.mark.parametrize("missing", [None, "zeros"])
def test_parameters_outside_the_loss_are_left_alone(missing):
    params = _params()
    opt = DualAdam(params, lr=0.01, weight_decay=0.1)
    _set(params, _grads(1, seed=5)[0])
    opt.step(groups={"unsup"})
    head = params[1].detach().clone()
    state = copy.deepcopy(opt.state[params[1]])
    grads = _grads(1, seed=6)[0]
    grads[1] = None if missing is None else torch.zeros(3)
    _set(params, grads)
    opt.step(groups={"unsup"})
    assert torch.equal(params[1], head)  # no Adam step, no weight decay
    for k, v in state["unsup"].items():
        assert torch.equal(opt.state[params[1]]["unsup"][k], v)
    assert float(opt.state[params[0]]["unsup"]["step"]) == 2


def test_clipping_is_per_mode():
    params = _params()
    opt = DualAdam(params, lr=1.0, betas=(0.0, 0.0), eps=0.0, clip_norm={"unsup": 0.0, "sup": 1.0})
    _set(params, [torch.full((4, 3), 10.0), torch.full((3,), 10.0)])
    opt.step(groups={"sup"})
    # beta1 = beta2 = 0: the first moment is the clipped gradient itself
    total = torch.linalg.vector_norm(torch.cat([opt.state[p]["sup"]["exp_avg"].flatten() for p in params]))
    assert abs(float(total) - 1.0) < 1e-4
    _set(params, [torch.full((4, 3), 10.0), torch.full((3,), 10.0)])
    opt.step(groups={"unsup"})
    assert torch.allclose(opt.state[params[1]]["unsup"]["exp_avg"], torch.full((3,), 10.0))


def test_step_needs_one_known_mode():
    opt = DualAdam(_params(), lr=0.01)
    for groups in (None, {"sup", "unsup"}, {"ctc"}):
        with pytest.raises(ValueError, match="mode"):
            opt.step(groups=groups)


def _fairseq_cfg(**overrides):
    cfg = OmegaConf.structured(DualAdamConfig(lr=[0.01], **overrides))
    return cfg


def test_state_dict_round_trip_keeps_both_moment_sets():
    params = _params()
    opt = FairseqDualAdam(_fairseq_cfg(), params)
    for i, grads in enumerate(_grads(4, seed=7)):
        _set(params, grads)
        opt.step(groups={("unsup", "sup")[i % 2]})
    saved = copy.deepcopy(opt.state_dict())
    clone = _params()
    for a, b in zip(clone, params):
        a.data.copy_(b.data)
    restored = FairseqDualAdam(_fairseq_cfg(), clone)
    restored.load_state_dict(saved)
    for i, grads in enumerate(_grads(2, seed=8)):
        for ps, o in ((params, opt), (clone, restored)):
            _set(ps, grads)
            o.step(groups={("sup", "unsup")[i]})
    for a, b in zip(params, clone):
        assert torch.equal(a, b)
    for mode in ("unsup", "sup"):
        assert float(restored.optimizer.state[clone[0]][mode]["step"]) == 3


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_through_fairseq_half_precision_wrapper(dtype):
    """fairseq's FP16Optimizer (fp32 master weights; for fp16 also a dynamic loss scaler)
    forwards groups= and zero-fills missing gradients; the head still does not move."""
    params = [torch.nn.Parameter(p.detach().to(dtype)) for p in _params()]
    cfg = OmegaConf.structured(FairseqConfig())
    cfg.common.bf16 = dtype == torch.bfloat16
    cfg.common.fp16 = True  # fairseq sets fp16 for --bf16 too
    cfg.common.fp16_no_flatten_grads = True  # --fp16 needs it: one flat fp32 copy would hide unused parameters
    cfg.optimization.lr = [0.01]
    cfg.optimizer = OmegaConf.merge(_fairseq_cfg(sup_clip_norm=0.0), {"_name": "sslasr_dual_adam"})
    opt = FP16Optimizer.build_optimizer(cfg, params)
    assert opt.supports_groups
    head = params[1].detach().clone()
    start = params[0].detach().clone()
    opt.zero_grad()  # as fairseq's trainer does before each update (it also arms the loss scaler)
    opt.backward(params[0].float().square().sum())  # the loss does not involve params[1]
    opt.step(groups={"sup"})
    assert torch.equal(params[1], head)
    assert not torch.equal(params[0], start)
    state = opt.fp32_optimizer.optimizer.state
    assert [float(s["sup"]["step"]) for s in state.values()] == [1.0]  # the head's master copy: no moments
    # the loss scale was undone: the first moment is (1 - beta1) x the true gradient 2p
    torch.testing.assert_close(list(state.values())[0]["sup"]["exp_avg"], 0.1 * 2 * start.float(), rtol=1e-2, atol=1e-3)
