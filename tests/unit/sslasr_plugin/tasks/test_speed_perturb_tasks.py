"""task.speed_perturb in every plugin task, on the tiny corpus: the training split (both streams
of the two-stream tasks) is perturbed as drawn, through fairseq's iterators and data-loader
workers; validation is not; frame labels are stretched to the perturbed audio; a resumed epoch
gets the same batches."""
import os
import time

import pytest
from fairseq import tasks
from fairseq.dataclass.configs import FairseqConfig
from omegaconf import OmegaConf

from sslasr_data.validate import frame_label_problem, read_manifest
from sslasr_plugin.batch_modes import SUP, UNSUP
from sslasr_plugin.data.speed_perturb import SpeedPerturbDataset
from sslasr_plugin.tasks.audio_ctc import AudioCtcConfig
from sslasr_plugin.tasks.frame_labels import FrameLabelsConfig
from sslasr_plugin.tasks.joint import JointConfig
from sslasr_plugin.tasks.slimipl import SlimIplConfig

FACTORS = [0.9, 1.0, 1.1]
MAX_TOKENS = 150000


def _task(config, name, data, train_subset="labeled", **overrides):
    cfg = OmegaConf.structured(FairseqConfig())
    cfg.dataset.train_subset = train_subset
    cfg.common.seed = 5
    cfg.task = OmegaConf.merge(OmegaConf.structured(config), {"_name": name, "data": str(data), **overrides})
    return tasks.setup_task(cfg.task)


def _epoch(task, dataset, epoch, num_workers=0):
    itr = task.get_batch_iterator(dataset, max_tokens=MAX_TOKENS, seed=5, epoch=epoch, num_workers=num_workers)
    return list(itr.next_epoch_itr(shuffle=True))


def _lengths(batch):
    """Audio samples of each utterance in a collated batch (padding excluded)."""
    mask = batch["net_input"].get("padding_mask")
    n = batch["net_input"]["source"].size(1)
    return [n] * len(batch["id"]) if mask is None else (~mask).sum(1).tolist()


def test_ctc_training_split_is_perturbed_as_drawn_in_workers_and_valid_is_not(tiny_corpus):
    task = _task(AudioCtcConfig, "sslasr_audio_ctc", tiny_corpus, speed_perturb=FACTORS)
    for split in ("labeled", "valid"):
        task.load_dataset(split)
    train, valid = task.dataset("labeled"), task.dataset("valid")
    assert isinstance(train, SpeedPerturbDataset) and not isinstance(valid, SpeedPerturbDataset)
    _, rows = read_manifest(f"{tiny_corpus}/valid.tsv")
    assert sorted(n for b in _epoch(task, valid, 1) for n in _lengths(b)) == sorted(n for _, _, n in rows)
    _, rows = read_manifest(f"{tiny_corpus}/labeled.tsv")
    seen = []
    for epoch in (1, 2):
        batches = _epoch(task, train, epoch, num_workers=1)  # a worker process holds the epoch's draw too
        train.set_epoch(epoch)
        for b in batches:
            assert b["net_input"]["source"].numel() <= MAX_TOKENS
            assert _lengths(b) == [min(train.sizes[i], train.max_sample_size) for i in b["id"].tolist()]
        assert sorted(i for b in batches for i in b["id"].tolist()) == list(range(len(rows)))
        seen.append({i: train.factor(i) for i in range(len(rows))})
    assert seen[0] != seen[1] and {f for s in seen for f in s.values()} == set(FACTORS)
    assert any(train.sizes[i] != n for i, (_, _, n) in enumerate(rows))
    # a resumed run (a new task) makes the same batches for its epoch
    again = _task(AudioCtcConfig, "sslasr_audio_ctc", tiny_corpus, speed_perturb=FACTORS)
    again.load_dataset("labeled")
    assert [b["id"].tolist() for b in _epoch(again, again.dataset("labeled"), 2)] == \
           [b["id"].tolist() for b in _epoch(task, train, 2)]


def _frame_labels(corpus, out):
    """Frame labels at 50 Hz one per frame of the demo front end (runs of five frames), as
    data_prep.pseudo_labels writes them."""
    out.mkdir()
    for split in ("unlabeled", "valid"):
        _, rows = read_manifest(f"{corpus}/{split}.tsv")
        lines = [" ".join(str(t // 5 % 20) for t in range(((n - 400) // 160 - 2) // 2 + 1)) for _, _, n in rows]
        (out / f"{split}.plab").write_text("\n".join(lines) + "\n")
    (out / "dict.plab.txt").write_text("".join(f"{k} 1\n" for k in range(20)))
    return out


@pytest.mark.parametrize("lab", [True, False])
def test_frame_labels_are_stretched_with_the_audio(tiny_corpus, tmp_path, lab):
    labels = _frame_labels(tiny_corpus, tmp_path / "pl")
    task = _task(FrameLabelsConfig, "sslasr_frame_labels", tiny_corpus, train_subset="unlabeled",
                 label_dir=str(labels), labels=["plab"], label_rate=50, pad_audio=True, random_crop=True,
                 max_sample_size=250000, label_aware_batching=lab, speed_perturb=FACTORS)
    task.load_dataset("unlabeled")
    train = task.dataset("unlabeled")
    perturbed = 0
    for epoch in (1, 2):
        for b in _epoch(task, train, epoch):
            assert b["net_input"]["source"].numel() <= MAX_TOKENS
            for i, n, count in zip(b["id"].tolist(), _lengths(b), b["target_lengths_list"][0].tolist()):
                assert n == train.sizes[i]
                assert frame_label_problem(count, f"#{i}", n, i + 2, "unlabeled.tsv", 50, 16000) is None
                perturbed += train.factor(i) != 1
    assert perturbed > 0


def test_both_streams_of_two_stream_tasks_are_perturbed(tiny_corpus):
    task = _task(JointConfig, "sslasr_joint", tiny_corpus, speed_perturb=FACTORS)  # unlabeled + labeled audio
    task.load_dataset("labeled")
    dataset = task.dataset("labeled")
    assert isinstance(dataset.streams[SUP], SpeedPerturbDataset)
    assert all(isinstance(d, SpeedPerturbDataset) for d in dataset.streams[UNSUP].datasets)
    for b in _epoch(task, dataset, 2):
        assert b["net_input"]["source"].numel() <= MAX_TOKENS
        stream = dataset.streams[b["mode"]]
        lengths = [stream.num_tokens(i - dataset.offset[b["mode"]]) for i in b["id"].tolist()]
        # labeled batches are padded; unlabeled ones cropped to their shortest utterance
        assert _lengths(b) == (lengths if b["mode"] == SUP else [min(lengths)] * len(lengths))
    assert dataset.streams[SUP].epoch == 2 and {d.epoch for d in dataset.streams[UNSUP].datasets} == {2}


@pytest.mark.parametrize("labels", ["hard", "soft"])
def test_slimipl_perturbs_its_labeled_audio_only(tiny_corpus, labels):
    """The cache's batches come from one unlabeled batch list for every epoch, and a cached batch
    read again must fit its labels: slimIPL's unlabeled audio keeps its speed, whatever the labels."""
    task = _task(SlimIplConfig, "sslasr_slimipl", tiny_corpus, speed_perturb=FACTORS, pseudo_labels=labels)
    task.load_dataset("labeled")
    dataset = task.dataset("labeled")
    assert isinstance(dataset.streams[SUP], SpeedPerturbDataset)
    assert not isinstance(dataset.streams[UNSUP], SpeedPerturbDataset)
    assert not any(isinstance(d, SpeedPerturbDataset) for d in getattr(dataset.streams[UNSUP], "datasets", []))
    sizes = dataset.streams[UNSUP].sizes.copy()
    dataset.set_epoch(2)
    assert (dataset.streams[UNSUP].sizes == sizes).all()


def test_slimipl_refuses_an_update_freq_that_changes_with_the_epoch(tiny_corpus):
    with pytest.raises(ValueError, match=r"one optimization.update_freq for every epoch.*\[1, 2\]"):
        _task(SlimIplConfig, "sslasr_slimipl", tiny_corpus, update_freq=[1, 2])


def _children() -> set:
    """This process's child processes (data-loader workers)."""
    return {pid for t in os.listdir("/proc/self/task") for pid in open(f"/proc/self/task/{t}/children").read().split()}


@pytest.mark.parametrize("config,name", [(AudioCtcConfig, "sslasr_audio_ctc"), (JointConfig, "sslasr_joint")])
def test_an_epochs_loader_workers_end_with_it(tiny_corpus, config, name):
    """Speed-perturbed and two-stream data get a new iterator every epoch; its worker must not
    outlive the epoch (fairseq's persistent workers would, 1-2 GB each, until garbage collection)."""
    task = _task(config, name, tiny_corpus, speed_perturb=FACTORS)
    task.load_dataset("labeled")
    before = _children()
    for epoch in (1, 2, 3):  # as fairseq's trainer asks for them (dataset.data_buffer_size: 10)
        itr = task.get_batch_iterator(task.dataset("labeled"), max_tokens=MAX_TOKENS, seed=5, epoch=epoch,
                                      num_workers=1, data_buffer_size=10)
        assert list(itr.next_epoch_itr(shuffle=True))
        deadline = time.monotonic() + 10  # the buffer's thread ends the loader after the last batch
        while _children() - before and time.monotonic() < deadline:  # (earlier tests' workers may end too)
            time.sleep(0.1)
        assert not _children() - before, f"epoch {epoch}: worker processes left {_children() - before}"
