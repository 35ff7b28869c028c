"""sslasr_dual_schedule: the contrastive LR warms up then decays linearly to 0.1x, the CTC LR
warms up then stays, both counted in total updates as the authors' code does."""
import pytest
import torch
from fairseq.dataclass.configs import FairseqConfig
from fairseq.optim import build_optimizer
from fairseq.optim.lr_scheduler import build_lr_scheduler
from omegaconf import OmegaConf

import sslasr_plugin  # noqa: F401  (registers the optimizer and the scheduler)


def _build(optimizer="sslasr_dual_adam", **schedule):
    params = [torch.nn.Parameter(torch.zeros(3))]
    cfg = OmegaConf.structured(FairseqConfig())
    cfg.optimization.lr = [1.0]
    cfg.optimization.max_update = 100
    cfg.optimizer = {"_name": optimizer}
    if optimizer == "sslasr_dual_adam":
        cfg.optimizer.update({"sup_lr_scale": 0.05, "weight_decay": 0.0, "adam_betas": "(0.0, 0.0)", "adam_eps": 0.0,
                              "sup_clip_norm": 0.0})
    cfg.lr_scheduler = OmegaConf.merge({"_name": "sslasr_dual_schedule", "phase_ratio": [0.1, 0.0, 0.9],
                                        "init_lr_scale": 0.0, "final_lr_scale": 0.1,
                                        "sup_phase_ratio": [0.05, 0.95, 0.0]}, schedule)
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    opt = build_optimizer(cfg.optimizer, params)
    return params, opt, build_lr_scheduler(cfg.lr_scheduler, opt)


# (updates done, contrastive factor, CTC factor), by hand: warm-up k/10 resp. k/5 for the k-th
# update, then 0.1 + 0.9 (100 - k) / (100 - 10) for the contrastive LR and 1 for CTC
@pytest.mark.parametrize("done, unsup, sup", [(0, 0.1, 0.2), (4, 0.5, 1.0), (9, 1.0, 1.0), (54, 0.55, 1.0),
                                              (99, 0.1, 1.0), (150, 0.1, 1.0)])
def test_factors_by_hand(done, unsup, sup):
    _, _, sched = _build()
    assert sched.factors(done) == pytest.approx({"unsup": unsup, "sup": sup})


def test_ctc_schedule_counts_from_sup_start():
    _, _, sched = _build(sup_start_updates=20)
    assert sched.factors(10)["sup"] == 0.0
    # CTC warms up over 5% of the 80 updates it counts: the 22nd update is its 2nd of 4
    assert sched.factors(21)["sup"] == pytest.approx(0.5)
    assert sched.factors(21)["unsup"] == pytest.approx(0.1 + 0.9 * 78 / 90)


def test_each_mode_steps_at_its_scheduled_lr():
    """With betas 0 and eps 0 an Adam step moves every weight by exactly its LR."""
    params, opt, sched = _build()
    sched.step_update(54)
    for mode, lr in (("unsup", 0.55), ("sup", 0.05 * 1.0)):
        before = params[0].detach().clone()
        params[0].grad = torch.ones(3)
        opt.step(groups={mode})
        torch.testing.assert_close(before - params[0].detach(), torch.full((3,), lr))


def test_tri_stage_steps_and_init_scale():
    """Set by steps instead of ratios, with tri_stage's hold and init_lr_scale."""
    _, _, sched = _build(phase_ratio=None, warmup_steps=4, hold_steps=6, decay_steps=10, init_lr_scale=0.2)
    assert [sched.factors(done)["unsup"] for done in (1, 3, 9, 14, 19, 30)] == pytest.approx(
        [0.2 + 0.8 * 2 / 4, 1.0, 1.0, 0.1 + 0.9 * 5 / 10, 0.1, 0.1])


def test_other_optimizers_are_refused():
    with pytest.raises(ValueError, match="optimizer._name=sslasr_dual_adam"):
        _build(optimizer="adam")
