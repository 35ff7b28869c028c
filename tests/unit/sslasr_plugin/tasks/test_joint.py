"""Joint masked CPC + CTC: the alternation schedule and its batches through fairseq's iterators
(shards, update_freq)."""
import pytest
from fairseq import tasks
from fairseq.data import iterators
from fairseq.dataclass.configs import FairseqConfig
from omegaconf import OmegaConf

from sslasr_plugin.data.alternating_batches import SUP, UNSUP, Schedule, epoch_batches
from sslasr_plugin.tasks.joint import JointConfig


def test_schedule_is_pretraining_then_cycles():
    s = Schedule(pretrain_updates=3, unsup_updates=2, sup_updates=1)
    assert [s.mode(u) for u in range(12)] == ["unsup"] * 3 + ["unsup", "unsup", "sup"] * 3
    assert [Schedule(0, 1, 1).mode(u) for u in range(4)] == ["unsup", "sup", "unsup", "sup"]
    assert {Schedule(0, 0, 1).mode(u) for u in range(5)} == {"sup"}
    with pytest.raises(ValueError):
        Schedule(0, 0, 0)


@pytest.mark.parametrize("schedule", [Schedule(0, 1, 1), Schedule(5, 2, 1), Schedule(0, 0, 1), Schedule(0, 5, 1)])
def test_epoch_batches_put_one_kind_per_update(schedule):
    batches = {UNSUP: [[100 + i] for i in range(10)], SUP: [[i] for i in range(4)]}
    per_update = 4  # e.g. 2 ranks x update_freq 2
    n = schedule.updates_per_epoch(10, 4, per_update)
    for epoch in (1, 2):
        out = epoch_batches(schedule, batches, epoch, seed=7, batches_per_update=per_update)
        assert len(out) == n * per_update
        for k in range(n):
            kinds = {UNSUP if b[0] >= 100 else SUP for b in out[k * per_update:(k + 1) * per_update]}
            assert kinds == {schedule.mode((epoch - 1) * n + k)}
        drawn = {tuple(b) for b in out}
        main = UNSUP if schedule.unsup_updates else SUP
        assert {tuple(b) for b in batches[main]} <= drawn  # an epoch is a pass over the main stream
        assert out == epoch_batches(schedule, batches, epoch, seed=7, batches_per_update=per_update)
    assert epoch_batches(schedule, batches, 1, 7, per_update) != epoch_batches(schedule, batches, 1, 8, per_update)


def _joint_task(data, update_freq=1, **task_overrides):
    cfg = OmegaConf.structured(FairseqConfig())
    cfg.dataset.train_subset = "labeled"
    cfg.optimization.update_freq = [update_freq]
    cfg.task = OmegaConf.merge(OmegaConf.structured(JointConfig), {"_name": "sslasr_joint", "data": str(data), **task_overrides})
    return tasks.setup_task(cfg.task)


@pytest.mark.parametrize("num_shards,update_freq", [(1, 1), (2, 3)])
def test_every_update_is_one_kind_on_every_rank(tiny_corpus, num_shards, update_freq):
    task = _joint_task(tiny_corpus, update_freq, unsup_updates=2, sup_updates=1)
    task.load_dataset("labeled")
    dataset = task.dataset("labeled")
    modes_by_rank = []
    for rank in range(num_shards):
        itr = task.get_batch_iterator(dataset, max_tokens=200000, seed=3, num_shards=num_shards, shard_id=rank)
        epoch = iterators.GroupedIterator(itr.next_epoch_itr(shuffle=True), update_freq)
        modes_by_rank.append([{s["mode"] for s in update} for update in epoch])
    n = len(modes_by_rank[0])
    assert n > 0 and all(len(m) == n for m in modes_by_rank)
    for u in range(n):
        assert all(m[u] == {task.schedule.mode(u)} for m in modes_by_rank), u


def test_mixed_batch_is_refused(tiny_corpus):
    task = _joint_task(tiny_corpus)
    task.load_dataset("labeled")
    ds = task.dataset("labeled")
    with pytest.raises(ValueError, match="mixes labeled and unlabeled"):
        ds.collater([ds[0], ds[len(ds) - 1]])
