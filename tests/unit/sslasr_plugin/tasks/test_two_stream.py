"""The two-stream tasks: joint and slimIPL are siblings over one base, the non-finite guard is
applied once (in the CTC task) for every kind of batch, and optimizers declare group steps."""
import torch
from fairseq import tasks
from fairseq.dataclass.configs import FairseqConfig
from omegaconf import OmegaConf

from sslasr_plugin.batch_modes import PL, UNSUP
from sslasr_plugin.tasks.joint import JointConfig, JointTask, steps_groups
from sslasr_plugin.tasks.slimipl import SlimIplConfig, SlimIplTask
from sslasr_plugin.tasks.two_stream import TwoStreamTask


def _task(config, name, data, **overrides):
    cfg = OmegaConf.structured(FairseqConfig())
    cfg.dataset.train_subset = "labeled"
    cfg.task = OmegaConf.merge(OmegaConf.structured(config), {"_name": name, "data": str(data), **overrides})
    return tasks.setup_task(cfg.task)


class _CtcModel(torch.nn.Module):
    """As a wav2vec 2.0 CTC model: an inner encoder and a head on top of it (here NaN)."""

    def __init__(self):
        super().__init__()
        self.w2v_encoder = torch.nn.Module()
        self.w2v_encoder.w2v_model = torch.nn.Linear(2, 2)
        self.head = torch.nn.Linear(2, 1)
        with torch.no_grad():
            self.head.weight.fill_(float("nan"))

    def forward(self, x):
        return self.head(self.w2v_encoder.w2v_model(x))

    def set_num_updates(self, n):
        pass


def _ctc_like(model, sample):
    """A loss that stays finite over NaN outputs, as fairseq's CTC with zero_infinity does."""
    out = model(sample["x"])
    loss = torch.where(torch.isnan(out), 0.0, out).pow(2).sum()
    return loss, 1, {"loss": loss.item(), "ntokens": 1, "nsentences": 1}


class _Sgd:
    def __init__(self):
        self.steps = 0

    def backward(self, loss):
        loss.backward()

    def step(self):
        self.steps += 1


def test_siblings_share_the_base_and_not_each_other():
    assert issubclass(JointTask, TwoStreamTask) and issubclass(SlimIplTask, TwoStreamTask)
    assert not issubclass(SlimIplTask, JointTask)


def test_nan_in_slimipl_ctc_head_on_a_pl_batch_is_caught(tiny_corpus):
    """A pseudo-labeled batch trains the whole CTC model: NaN from its head is caught (before the
    two-stream base, slimIPL watched only the inner wav2vec 2.0 model on such batches)."""
    task = _task(SlimIplConfig, "sslasr_slimipl", tiny_corpus, warmup_updates=0)
    model, opt = _CtcModel(), _Sgd()
    sample = {"x": torch.ones(1, 2), "id": torch.tensor([3]), "mode": PL}
    log = task.train_step(sample, model, _ctc_like, opt, update_num=0)[2]
    assert log["nonfinite"] == 1
    task.optimizer_step(opt, model, 0)
    assert opt.steps == 0  # the update's only batch was bad: skipped


def test_joint_watches_the_inner_model_on_unsup_batches_and_the_whole_model_otherwise(tiny_corpus):
    task = _task(JointConfig, "sslasr_joint", tiny_corpus)
    model = _CtcModel()
    assert task.nonfinite_watched(model, {"mode": UNSUP}) == [model.w2v_encoder.w2v_model]
    assert task.nonfinite_watched(model, {}) == [model]


def test_only_optimizers_declaring_groups_step_one_mode():
    from types import SimpleNamespace

    from fairseq.optim.amp_optimizer import AMPOptimizer

    assert steps_groups(SimpleNamespace(supports_groups=True))
    assert not steps_groups(SimpleNamespace(supports_groups=False)) and not steps_groups(SimpleNamespace())
    amp = AMPOptimizer.__new__(AMPOptimizer)
    amp.fp32_optimizer = SimpleNamespace(optimizer=SimpleNamespace(supports_groups=True))
    assert not steps_groups(amp)  # its scaler step forwards no groups
