"""Non-finite losses: the batch is left out of its update and named, an all-bad update is skipped
(weights and moments untouched), a run that stays non-finite stops with advice; the same decision
on every rank; the data check finds NaN samples."""
import logging
import os
from types import SimpleNamespace

import pytest
import torch
import torch.multiprocessing as mp
from fairseq.tasks import FairseqTask

from data_prep import check
from sslasr_plugin.data.alternating_batches import UNSUP
from sslasr_plugin.tasks import nonfinite
from sslasr_plugin.tasks.joint import JointTask
from sslasr_plugin.tasks.nonfinite import NonFiniteGuard
from tests.helpers import free_port, nan_wav


class _Task(NonFiniteGuard, FairseqTask):
    def __init__(self, patience=3):
        super().__init__(SimpleNamespace(nonfinite_patience=patience, train_subset="train"))


class _Model(torch.nn.Linear):
    def set_num_updates(self, n):
        pass


class _Optimizer:
    """The two calls fairseq's FairseqTask makes: backward, then step (plain SGD here)."""

    def __init__(self, model, lr=0.1):
        self.model, self.lr, self.steps = model, lr, 0

    def backward(self, loss):
        loss.backward()

    def step(self):
        self.steps += 1
        with torch.no_grad():
            for p in self.model.parameters():
                if p.grad is not None:
                    p -= self.lr * p.grad


def _criterion(model, sample):
    """Sum of squares of the model's output, NaN where the input is NaN."""
    loss = model(sample["x"]).pow(2).sum()
    return loss, len(sample["x"]), {"loss": loss.item(), "ntokens": 3, "nsentences": len(sample["x"])}


def _sample(nan=False, ids=(0,)):
    x = torch.arange(1.0, 1 + 2 * len(ids)).view(len(ids), 2)
    if nan:
        x[0, 0] = float("nan")
    return {"x": x, "id": torch.tensor(ids)}


def _update(task, model, opt, update_num, samples, dummies=()):
    model.zero_grad()
    logs = [task.train_step(s, model, _criterion, opt, update_num, ignore_grad=i in dummies)[2]
            for i, s in enumerate(samples)]
    task.optimizer_step(opt, model, update_num)
    return logs


def test_nan_batch_adds_nothing_to_the_update_and_is_named(caplog):
    torch.manual_seed(0)
    model, task = _Model(2, 1), _Task()
    reference = _Model(2, 1)
    reference.load_state_dict(model.state_dict())
    good = _sample(ids=(4,))
    _criterion(reference, good)[0].backward()  # the gradient of the good batch alone
    with caplog.at_level(logging.WARNING):
        logs = _update(task, model, _Optimizer(model), 0, [good, _sample(nan=True, ids=(7,))])
    assert torch.equal(model.weight.grad, reference.weight.grad) and torch.equal(model.bias.grad, reference.bias.grad)
    # every log has the key (fairseq's summed-statistics all-reduce needs the same keys on every rank)
    assert logs[0]["nonfinite"] == 0 and logs[1] == {"loss": 0.0, "ntokens": 3, "nsentences": 1, "nonfinite": 1}
    assert "update 1: non-finite loss (nan) on a batch of 1 utterances (#7)" in caplog.text
    assert "skipped" not in caplog.text  # one good batch: the update is taken


def test_finite_loss_over_nan_outputs_is_caught(caplog):
    """As fairseq's CTC with zero_infinity over NaN logits: the loss is finite, its gradient NaN."""
    def masked(model, sample):
        out = model(sample["x"])
        loss = torch.where(torch.isnan(out), 0.0, out).pow(2).sum()
        return loss, 1, {"loss": loss.item()}

    model, task = _Model(2, 1), _Task()
    assert torch.isfinite(masked(model, _sample(nan=True))[0])
    with caplog.at_level(logging.WARNING):
        log = task.train_step(_sample(nan=True), model, masked, _Optimizer(model), 0)[2]
    assert log["nonfinite"] == 1 and model.weight.grad is None  # one process: the stand-in touches nothing
    assert "update 1: NaN in the model's outputs (loss 0.0) on a batch of 1 utterances (#0)" in caplog.text


class _MaskedFrames(_Model):
    """As wav2vec 2.0's time mask: masked input rows are replaced by a mask embedding after the
    front end, so NaN audio under the mask gives a finite output and loss."""

    def forward(self, source, mask):
        out = super().forward(source)
        return torch.where(mask[:, None], torch.zeros_like(out), out)


def test_nan_input_under_the_mask_is_caught(caplog):
    """Finite loss and outputs, NaN front-end gradient (0 x NaN): the input check catches it."""
    def criterion(model, sample):
        loss = model(**sample["net_input"]).pow(2).sum()
        return loss, 1, {"loss": loss.item()}

    source = torch.tensor([[float("nan"), 1.0], [2.0, 3.0]])
    sample = {"net_input": {"source": source, "mask": torch.tensor([True, False])}, "id": torch.tensor([5, 6])}
    unguarded = _MaskedFrames(2, 1)
    loss = criterion(unguarded, sample)[0]
    loss.backward()
    assert torch.isfinite(loss) and torch.isnan(unguarded.weight.grad).any()  # what fairseq would stop on

    model, task = _MaskedFrames(2, 1), _Task()
    with caplog.at_level(logging.WARNING):
        log = task.train_step(sample, model, criterion, _Optimizer(model), 0)[2]
    assert log["nonfinite"] == 1 and model.weight.grad is None
    assert "update 1: NaN or Inf in the batch's input (loss " in caplog.text and "(#5, #6)" in caplog.text

    sample["net_input"]["source"] = torch.tensor([[float("inf"), 1.0], [2.0, 3.0]])
    assert task.train_step(sample, model, criterion, _Optimizer(model), 1)[2]["nonfinite"] == 1
    sample["net_input"]["source"] = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    assert task.train_step(sample, model, criterion, _Optimizer(model), 2)[2]["nonfinite"] == 0


class _Wrapper(torch.nn.Module):
    """As joint training's model: the unsupervised loss calls the inner wav2vec 2.0 model."""

    def __init__(self):
        super().__init__()
        self.w2v_encoder = torch.nn.Module()
        self.w2v_encoder.w2v_model = _Model(2, 1)

    def set_num_updates(self, n):
        pass


def _inner_masked(model, sample):
    out = model.w2v_encoder.w2v_model(sample["x"])
    loss = torch.where(torch.isnan(out), 0.0, out).pow(2).sum()
    return loss, 1, {"loss": loss.item()}


class _JointLike(_Task):
    nonfinite_watched = JointTask.nonfinite_watched


@pytest.mark.parametrize("task,caught", [(_Task, False), (_JointLike, True)], ids=["top-level only", "joint"])
def test_joint_unsupervised_batches_watch_the_inner_model(task, caught):
    sample = dict(_sample(nan=True), mode=UNSUP)
    log = task().train_step(sample, _Wrapper(), _inner_masked, _Optimizer(_Wrapper()), 0)[2]
    assert log["nonfinite"] == int(caught)


def test_frozen_parameters_keep_no_gradient_and_are_not_decayed():
    """A parameter the good batches leave without a gradient (a frozen encoder) still has none
    after a bad batch in the same update, so AdamW's weight decay does not touch it."""
    torch.manual_seed(0)
    model, task = _Wrapper(), _Task()
    unused = model.w2v_encoder.w2v_model.weight
    before = unused.detach().clone()
    head = torch.nn.Linear(2, 1)
    model.head = head

    def head_only(model, sample):
        loss = model.head(sample["x"]).pow(2).sum()
        return loss, 1, {"loss": loss.item()}

    adamw = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.5)
    opt = SimpleNamespace(backward=lambda loss: loss.backward(), step=adamw.step)
    model.zero_grad()
    task.train_step(_sample(), model, head_only, opt, 0)
    task.train_step(_sample(nan=True), model, head_only, opt, 0)
    assert unused.grad is None and head.weight.grad is not None
    task.optimizer_step(opt, model, 0)
    assert torch.equal(unused, before) and not adamw.state.get(unused)


def test_half_precision_weights_get_zero_not_nan_gradients(monkeypatch):
    """With several ranks the stand-in touches every parameter; it is exactly 0 in fp16 too (a
    sum of the whole weight, 2 x 40000, overflows fp16 to inf, and inf * 0 is NaN), and the
    gradients are zeros."""
    monkeypatch.setattr(nonfinite, "rank_and_world", lambda: (0, 2))
    model, task = _Model(2, 1).half(), _Task()
    with torch.no_grad():
        model.weight.fill_(40000.0)
    sample = {"x": torch.tensor([[float("nan"), 1.0]], dtype=torch.float16), "id": torch.tensor([0])}
    loss = task.train_step(sample, model, _criterion, _Optimizer(model), 0)[0]
    assert loss.item() == 0 and torch.isfinite(model.weight.grad).all()
    assert not model.weight.grad.any() and not model.bias.grad.any()


def test_ddp_with_find_unused_parameters_stops_with_advice(monkeypatch):
    monkeypatch.setattr(nonfinite, "rank_and_world", lambda: (0, 2))
    ddp = SimpleNamespace(module=torch.nn.parallel.DistributedDataParallel.__new__(torch.nn.parallel.DistributedDataParallel))
    ddp.module.find_unused_parameters = True
    with pytest.raises(FloatingPointError, match="find_unused_parameters=true .* distributed_training\\.ddp_backend=legacy_ddp"):
        nonfinite.zero_loss(ddp, torch.float32, "cpu")
    ddp.module.find_unused_parameters = False
    assert nonfinite._find_unused_ddp(ddp) is False


class _Fp32(torch.optim.SGD):
    """fairseq's FP32 optimizer as AMPOptimizer sees it."""

    @property
    def optimizer(self):
        return self

    def clip_grad_norm(self, max_norm, aggregate_norm_fn=None):
        return torch.nn.utils.clip_grad_norm_(self.param_groups[0]["params"], 1e9)


def test_skipped_update_resets_the_amp_loss_scaler():
    """fairseq's AMPOptimizer unscales in clip_grad_norm and resets its scaler in step(): a skipped
    step must reset it too, or the next update fails ("unscale_() has already been called")."""
    from fairseq.optim.amp_optimizer import AMPOptimizer

    model, task = _Model(2, 1), _Task()
    amp = AMPOptimizer.__new__(AMPOptimizer)  # its __init__ makes a CUDA scaler: the same class on the CPU
    amp.fp32_optimizer, amp.min_loss_scale = _Fp32(model.parameters(), lr=0.1), 1e-4
    amp._grad_scaler = torch.amp.GradScaler("cpu", init_scale=8.0)
    before = model.weight.detach().clone()
    for update, bad in enumerate([True, False]):  # what fairseq's trainer calls, in its order
        model.zero_grad()
        task.train_step(_sample(nan=bad), model, _criterion, amp, update)
        amp.clip_grad_norm(0.0)
        task.optimizer_step(amp, model, update)
    assert not torch.equal(model.weight, before) and amp.scaler.get_scale() == 8.0


def test_update_with_only_nan_batches_is_skipped_then_the_run_stops(caplog):
    model, task = _Model(2, 1), _Task(patience=3)
    opt = _Optimizer(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with caplog.at_level(logging.WARNING):
        _update(task, model, opt, 0, [_sample(nan=True), _sample(nan=True)])
        _update(task, model, opt, 1, [_sample(nan=True)])
    assert opt.steps == 0 and all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert "update 2 skipped: every batch was non-finite (loss, outputs or input) (2 such update(s) in a row)" in caplog.text
    _update(task, model, opt, 2, [_sample(), _sample(nan=True)])  # a good batch: taken, the streak ends
    assert opt.steps == 1
    for update in (3, 4):
        _update(task, model, opt, update, [_sample(nan=True)])
    with pytest.raises(FloatingPointError, match="non-finite in every batch of 3 consecutive updates"):
        _update(task, model, opt, 5, [_sample(nan=True)])
    assert opt.steps == 1


def test_dummy_batches_neither_count_nor_warn(caplog):
    """fairseq's dummy batches (ignore_grad: padding of uneven shards) are not the data's fault."""
    model, task = _Model(2, 1), _Task(patience=1)
    opt = _Optimizer(model)
    with caplog.at_level(logging.WARNING):
        logs = _update(task, model, opt, 0, [_sample(), _sample(nan=True)], dummies={1})
    assert opt.steps == 1 and logs[1]["nonfinite"] == 0 and "non-finite" not in caplog.text
    assert torch.isfinite(model.weight).all()


def _rank_worker(rank, world, port, results):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    model, task = _Model(2, 1), _Task()
    opt = _Optimizer(model)
    logs = _update(task, model, opt, 0, [_sample(nan=rank == 0)])  # one rank's batch is good: every rank steps
    first = opt.steps
    # fairseq's summed-statistics sync (Trainer._fast_stat_sync_sum) takes the keys of each rank's
    # first log and all-reduces one buffer: the keys must match on every rank
    from fairseq.distributed import utils as distributed_utils

    data = {f"logging_outputs_{k}": sum(log[k] for log in logs) for k in logs[0]}
    summed = distributed_utils.all_reduce_dict(data, device=torch.device("cpu"), group=None)
    _update(task, model, opt, 1, [_sample(nan=True)])  # every rank's batch is bad: every rank skips
    results[rank] = (first, opt.steps, float(summed["logging_outputs_nonfinite"]), sorted(logs[0]))
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_skip_decision_is_the_same_on_every_rank():
    world, results = 2, mp.Manager().dict()
    mp.spawn(_rank_worker, args=(world, free_port(), results), nprocs=world)
    assert results[0] == results[1] == (1, 1, 1.0, ["loss", "nonfinite", "nsentences", "ntokens"])


# ------------------------------------------------------------------------------ real data


def test_data_check_finds_nan_samples(corpus_copy, capsys):
    rel = nan_wav(corpus_copy)
    assert check.main(["--data", str(corpus_copy), "--splits", "labeled", "--labels", "ltr"]) == 0  # header fine
    capsys.readouterr()
    assert check.main(["--data", str(corpus_copy), "--splits", "labeled", "--labels", "ltr", "--read-audio"]) == 1
    out = capsys.readouterr().out
    assert (f"{corpus_copy / 'labeled.tsv'} line 2: {corpus_copy / rel} holds 100 non-finite samples (NaN/Inf; "
            "the first at sample 100)") in out
