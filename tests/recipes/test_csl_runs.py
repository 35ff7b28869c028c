"""CSL end to end: CTC teacher -> frame pseudo-labels -> CSL / CE-PL pre-training -> CTC
fine-tuning -> fairseq-generate, each through the real command lines."""
import json
import re
import sys

import pytest

from sslasr_plugin.checkpoint import load_checkpoint
from tests.helpers import generate, hydra_train, run_cli

pytestmark = pytest.mark.slow


def _label(teacher, corpus, out, *extra, check=True):
    return run_cli([sys.executable, "-m", "data_prep.pseudo_labels", "--teacher", teacher, "--data", corpus,
                    "--splits", "unlabeled", "valid", "--out", out, "--no-progress", *extra], check=check)


@pytest.fixture(scope="module")
def pseudo_labels(ctc_checkpoint, tiny_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("pl") / "plab"
    _label(ctc_checkpoint, tiny_corpus, out)
    return out


def _encoder_frames(samples):
    """Frames of the scratch_fbank encoder: 25 ms/10 ms log-mel, then a 3-tap stride-2 conv."""
    return ((samples - 400) // 160 + 1 - 3) // 2 + 1


def test_pseudo_labels_align_with_audio(pseudo_labels, tiny_corpus):
    assert json.loads((pseudo_labels / "plab.json").read_text())["label_rate"] == 50
    classes = {line.split()[0] for line in (pseudo_labels / "dict.plab.txt").read_text().splitlines()}
    for split in ("unlabeled", "valid"):
        rows = (tiny_corpus / f"{split}.tsv").read_text().splitlines()[1:]
        labels = (pseudo_labels / f"{split}.plab").read_text().splitlines()
        confs = (pseudo_labels / f"{split}.plab.conf").read_text().splitlines()
        assert len(labels) == len(confs) == len(rows)
        for row, lab, conf in zip(rows, labels, confs):
            frames = _encoder_frames(int(row.split("\t")[1]))
            assert len(lab.split()) == len(conf.split()) == frames
            assert set(lab.split()) <= classes
            assert all(0.0 <= float(c) <= 1.0 for c in conf.split())


def test_pseudo_labels_resume_and_never_overwrite(ctc_checkpoint, tiny_corpus, pseudo_labels, tmp_path):
    out = tmp_path / "pl"
    out.mkdir()
    full = (pseudo_labels / "valid.plab").read_text().splitlines()
    full_conf = (pseudo_labels / "valid.plab.conf").read_text().splitlines()
    full_ltr = (pseudo_labels / "valid.plab.ltr").read_text().splitlines()
    # An interrupted run: three complete rows and a torn fourth.
    (out / "valid.plab.partial").write_text("\n".join(full[:3]) + "\n" + full[3][:5])
    (out / "valid.plab.conf.partial").write_text("\n".join(full_conf[:3]) + "\n")
    (out / "valid.plab.ltr.partial").write_text("\n".join(full_ltr[:3]) + "\n")
    run_cli([sys.executable, "-m", "data_prep.pseudo_labels", "--teacher", ctc_checkpoint, "--data", tiny_corpus,
             "--splits", "valid", "--out", out, "--no-progress"])
    assert (out / "valid.plab").read_text().splitlines() == full
    assert (out / "valid.plab.ltr").read_text().splitlines() == full_ltr
    proc = run_cli([sys.executable, "-m", "data_prep.pseudo_labels", "--teacher", ctc_checkpoint, "--data",
                    tiny_corpus, "--splits", "valid", "--out", out, "--no-progress"], check=False)
    assert proc.returncode == 2 and "exists; pass --overwrite" in proc.stderr


@pytest.mark.parametrize("config,logged", [("csl", "retrieval_acc"), ("ce_pl", "frame_acc")])
def test_pretrain_finetune_decode(config, logged, pseudo_labels, tiny_corpus, tmp_path):
    pre = tmp_path / config
    buckets = 2 if config == "ce_pl" else 1  # LAB within length buckets, through the task option
    proc = hydra_train("examples/csl", config, tiny_corpus, pre, f"task.label_dir={pseudo_labels}",
                       f"task.label_aware_buckets={buckets}")
    log = proc.stdout + proc.stderr
    assert logged in log and re.search(r"label-aware batching, epoch 1: \d+ batches, [\d.]+ of batch labels held by "
                                       r">= 2 utterances, [\d.]+ of the batched samples audio", log)
    assert load_checkpoint(pre / "checkpoint_last.pt")["cfg"]["task"]["label_aware_buckets"] == buckets
    ft = tmp_path / "ft"
    hydra_train("examples/ctc", "finetune_w2v", tiny_corpus, ft, f"model.w2v_path={pre / 'checkpoint_last.pt'}")
    proc = generate(tiny_corpus, ft / "checkpoint_last.pt", "test_ood")
    assert "Generate test_ood with beam=1: WER:" in proc.stdout + proc.stderr
    if config == "csl":  # iterative PL: the fine-tuned student is the next round's teacher
        pl2 = tmp_path / "pl_round2"
        _label(ft / "checkpoint_last.pt", tiny_corpus, pl2)
        assert json.loads((pl2 / "plab.json").read_text())["teacher"] == str((ft / "checkpoint_last.pt").resolve())
        for split in ("unlabeled", "valid"):
            assert [len(line.split()) for line in (pl2 / f"{split}.plab").read_text().splitlines()] == \
                   [len(line.split()) for line in (pseudo_labels / f"{split}.plab").read_text().splitlines()]
        hydra_train("examples/csl", config, tiny_corpus, tmp_path / "round2", f"task.label_dir={pl2}")
        assert load_checkpoint(tmp_path / "round2" / "checkpoint_last.pt")["cfg"]["task"]["label_dir"] == str(pl2)


def test_demo_script_runs_the_ablation_arms(pseudo_labels, ctc_checkpoint, tiny_corpus, tmp_path):
    """examples/csl/run_demo.sh: each arm pre-trains with its switch, fine-tunes, decodes and
    lands in one table; an unknown arm is refused before any training."""
    env = ["env", f"DATA={tiny_corpus}", f"TEACHER={ctc_checkpoint}", f"PL={pseudo_labels}", f"EXP={tmp_path}",
           "PRETRAIN_UPDATES=2", "FT_UPDATES=2", "ARMS=csl_no_lab csl_batch_negatives"]
    proc = run_cli([*env, "bash", "examples/csl/run_demo.sh"])
    table = (tmp_path / "csl_results.md").read_text()
    rows = re.findall(r"^\| (\w+/test(?:_ood)?) \| 8 \|", table, flags=re.M)
    assert rows == [f"{arm}/{split}" for arm in ("supervised_only", "csl_no_lab", "csl_batch_negatives")
                    for split in ("test", "test_ood")], table
    cfg = {arm: load_checkpoint(tmp_path / arm / "checkpoint_last.pt")["cfg"] for arm in ("csl_no_lab", "csl_batch_negatives")}
    assert not cfg["csl_no_lab"]["task"]["label_aware_batching"] and cfg["csl_no_lab"]["criterion"]["negatives"] == "same_utterance"
    assert cfg["csl_batch_negatives"]["task"]["label_aware_batching"] and cfg["csl_batch_negatives"]["criterion"]["negatives"] == "batch"
    logs = {arm: (tmp_path / arm / "hydra" / "hydra_train.log").read_text() for arm in cfg}
    assert "label-aware batching, epoch 1" not in logs["csl_no_lab"]
    assert "label-aware batching, epoch 1" in logs["csl_batch_negatives"]
    for arm in ("csl_no_lab", "csl_batch_negatives"):  # the fine-tuning started from that arm's encoder
        ft = load_checkpoint(tmp_path / f"{arm}_ft" / "checkpoint_last.pt")
        assert ft["cfg"]["model"]["w2v_path"] == str(tmp_path / arm / "checkpoint_last.pt")
        assert ft["optimizer_history"][-1]["num_updates"] == 2
    # the two encoders under one protocol (same batches, both kinds of negatives)
    ckpts = [str(tmp_path / arm / "checkpoint_last.pt") for arm in cfg]
    out = run_cli([sys.executable, "examples/csl/eval_encoders.py", "--data", tiny_corpus, "--label-dir", pseudo_labels,
                   *ckpts]).stdout
    lines = re.findall(r"^(\S+) negatives=(\w+): loss [\d.]+ retrieval_acc ([\d.]+) anchors (\d+)$", out, flags=re.M)
    assert [(path, neg) for path, neg, _, _ in lines] == [(c, n) for c in ckpts for n in ("same_utterance", "batch")], out
    assert all(0 <= float(acc) <= 1 and int(anchors) > 0 for _, _, acc, anchors in lines)
    assert len({anchors for _, _, _, anchors in lines}) == 1  # the same frames for every encoder and setting
    bad = run_cli([*env[:-1], "ARMS=csl csl_nolab", "bash", "examples/csl/run_demo.sh"], check=False)
    assert bad.returncode == 2 and "unknown arm 'csl_nolab'" in bad.stderr
    assert not (tmp_path / "csl").exists()


def test_csl_with_speed_perturbation_and_gradient_accumulation(pseudo_labels, tiny_corpus, tmp_path):
    """Frame labels stretched with the perturbed audio pass the CSL criterion's frame check (it
    refuses labels more than 2 frames off the encoder's); update_freq=2 takes two label-aware
    batches per update."""
    proc = hydra_train("examples/csl", "csl", tiny_corpus, tmp_path, f"task.label_dir={pseudo_labels}",
                       "task.speed_perturb=[0.9,1.0,1.1]", "optimization.update_freq=[2]", "dataset.max_tokens=160000")
    drawn = re.findall(r"speed perturbation, epoch 1: utterances per factor 0.9: (\d+), 1: (\d+), 1.1: (\d+)",
                       proc.stdout + proc.stderr)
    assert drawn and sum(map(int, drawn[0])) == 24 and min(map(int, drawn[0])) > 0  # the tiny unlabeled split
    ckpt = load_checkpoint(tmp_path / "checkpoint_last.pt")
    assert ckpt["cfg"]["task"]["speed_perturb"] == [0.9, 1.0, 1.1]
    assert ckpt["optimizer_history"][-1]["num_updates"] == 3
    assert ckpt["extra_state"]["train_iterator"]["iterations_in_epoch"] == 6  # 3 updates x 2 batches
