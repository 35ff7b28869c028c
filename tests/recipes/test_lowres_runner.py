"""The low-resource benchmark's stage runner (examples/lowres/run.sh) on the tiny preset: every
stage runs, a finished stage is skipped, a killed training resumes from its checkpoint, and the
page is rebuilt from the runs' files alone; a baseline carried in the page's store restores on a
machine without the runs."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sslasr_plugin.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
TINY = ["--preset", "tiny", "--sweep", "d0.1_m0.2", "--oracle-updates", "3", "--base-updates", "3",
        "--pl-updates", "4", "--interval", "2", "--patience", "2", "--decode-splits", "test_ood",
        "--teacher-updates", "3", "--pretrain-updates", "3", "--ft-updates", "4", "--classes", "40", "--min-frames", "5",
        "--km-clusters", "5"]


def runner(tmp: Path, *args):
    return ["bash", "examples/lowres/run.sh", "--data", str(tmp / "data"), "--exp", str(tmp / "exp"),
            "--page", str(tmp / "page" / "lowres.md"), *TINY, *args]


def env():
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


def run(cmd):
    proc = subprocess.run(cmd, cwd=REPO, env=env(), capture_output=True, text=True, timeout=2400)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc.stdout


def test_every_stage_runs_then_skips_and_a_killed_stage_resumes(tmp_path):
    out = run(runner(tmp_path, "--seeds", "1", "--stage", "0", "--stop-stage", "11"))
    exp = tmp_path / "exp"
    runs = ["oracle_s1", "labeled_10min/baseline_d0.1_m0.2_s1", "labeled_10min/control_s1",
            "labeled_10min/slimipl_hard_s1", "labeled_10min/slimipl_hard_ood_s1", "labeled_10min/slimipl_oracle_s1",
            "labeled_10min/slimipl_oracle_ood_s1", "labeled_10min/soft_ctc_mix_s1", "labeled_10min/soft_ctc_mix_both_s1",
            "labeled_10min/slimipl_lm_s1", "labeled_10min/slimipl_lm_ood_s1", "labeled_10min/csl_frame_s1",
            "labeled_10min/ce_pl_frame_s1", "labeled_10min/w2v2_ctc_s1", "labeled_10min/w2v2_both_ctc_s1",
            "labeled_10min/hubert_ctc_s1", "labeled_10min/joint_s1"]
    prepared = ["labeled_10min/frame_teacher_s1", "labeled_10min/csl_frame_pretrain_s1",
                "labeled_10min/ce_pl_frame_pretrain_s1", "labeled_10min/w2v2_pretrain_s1",
                "labeled_10min/w2v2_both_pretrain_s1", "labeled_10min/hubert_pretrain_s1"]
    for name in runs:
        assert (exp / name / "DONE").exists(), out
        assert (exp / name / "decode_test_ood" / "generate-test_ood.txt").stat().st_size > 0
        # fairseq-generate's own log stays beside its decode, out of the runner's output
        assert "loading model(s) from" in (exp / name / "decode_test_ood" / "generate.log").read_text()
    # The PL arms label their unlabeled split (1 labeled : 4 pseudo-labeled updates); the control,
    # from the same checkpoint with the same schedule, makes labeled updates only.
    arm_log = (exp / "labeled_10min/slimipl_hard_ood_s1/hydra/hydra_train.log").read_text()
    assert "'unlabeled_subsets': 'unlabeled_ood'" in arm_log and "'unsup_updates': 4" in arm_log
    # Their ceilings: the same runs trained on the true transcripts (pseudo-label CER 0).
    for name, unlabeled in (("slimipl_oracle_s1", "unlabeled"), ("slimipl_oracle_ood_s1", "unlabeled_ood")):
        log = (exp / "labeled_10min" / name / "hydra/hydra_train.log").read_text()
        assert "'pl_decoder': oracle" in log and f"'unlabeled_subsets': '{unlabeled}'" in log
        assert re.search(r"pl_cer[= ]0(\.0+)?(?![\d.])", (exp / "labeled_10min" / name / "train.out").read_text())
    # The soft arm on both unlabeled splits logs its labels' CER on each.
    both = exp / "labeled_10min/soft_ctc_mix_both_s1"
    assert "'unlabeled_subsets': 'unlabeled,unlabeled_ood'" in (both / "hydra/hydra_train.log").read_text()
    assert "pl_cer_unlabeled_ood" in (both / "train.out").read_text()
    control_log = (exp / "labeled_10min/control_s1/hydra/hydra_train.log").read_text()
    assert "'unsup_updates': 0" in control_log
    for log in (arm_log, control_log):
        assert "baseline_d0.1_m0.2_s1/checkpoint_best.pt" in log and "'max_update': 4" in log
    # The LM arm decodes its pseudo-labels with the LM stage 0 built, at the weights tuned on valid.
    best = json.loads((exp / "labeled_10min/tune_lm_s1/best.json").read_text())
    lm_log = (exp / "labeled_10min/slimipl_lm_s1/hydra/hydra_train.log").read_text()
    assert "'pl_decoder': lm" in lm_log and f"'pl_lm_weight': {best['lm_weight']}" in lm_log
    assert f"'word_score': {best['word_score']}" in lm_log and "lm/word.bin" in lm_log
    ood_log = (exp / "labeled_10min/slimipl_lm_ood_s1/hydra/hydra_train.log").read_text()
    assert "'unlabeled_subsets': 'unlabeled_ood'" in ood_log and f"'pl_lm_weight': {best['lm_weight']}" in ood_log
    # The frame teacher: the labeled subset aligned by the baseline, a frame cross-entropy model
    # from the baseline's encoder, its labels of `unlabeled`; CSL and CE-PL pre-train on them from
    # scratch (not decoded: TRAINED) and fine-tune with CTC on the labeled subset.
    for name in prepared:
        assert (exp / name / "TRAINED").exists() and not (exp / name / "DONE").exists()
    units, labels = exp / "labeled_10min/frame_units_s1", exp / "labeled_10min/frame_pl_s1"
    assert json.loads((units / "units.json").read_text())["fit_split"] == "labeled_10min"
    teacher_log = (exp / "labeled_10min/frame_teacher_s1/hydra/hydra_train.log").read_text()
    assert "baseline_d0.1_m0.2_s1/checkpoint_best.pt" in teacher_log and str(units) in teacher_log
    assert (labels / "dict.plab.txt").read_text().split()[::2] == (units / "dict.unit.txt").read_text().split()[::2]
    assert len((labels / "unlabeled.plab").read_text().splitlines()) == len(
        (tmp_path / "data" / "unlabeled.tsv").read_text().splitlines()) - 1
    for arm in ("csl", "ce_pl"):
        pre_log = (exp / f"labeled_10min/{arm}_frame_pretrain_s1/hydra/hydra_train.log").read_text()
        assert str(labels) in pre_log and "'train_subset': 'unlabeled'" in pre_log and "'init_encoder': None" in pre_log
        ft_log = (exp / f"labeled_10min/{arm}_frame_s1/hydra/hydra_train.log").read_text()
        assert f"{arm}_frame_pretrain_s1/checkpoint_last.pt" in ft_log and "'mask_prob': 0.2" in ft_log
        assert "num_updates 4" in ft_log
    # wav2vec 2.0 pre-trains without labels on `unlabeled`, or on `unlabeled` + `unlabeled_ood`
    # (a manifest the runner makes), then fine-tunes like CSL's student.
    data = tmp_path / "data"
    rows = lambda split: (data / f"{split}.tsv").read_text().splitlines()  # noqa: E731
    assert rows("unlabeled_both") == rows("unlabeled") + rows("unlabeled_ood")[1:]
    for arm, split in (("w2v2", "unlabeled"), ("w2v2_both", "unlabeled_both")):
        pre_log = (exp / f"labeled_10min/{arm}_pretrain_s1/hydra/hydra_train.log").read_text()
        assert f"'train_subset': '{split}'" in pre_log and "'_name': 'wav2vec'" in pre_log
        ft_log = (exp / f"labeled_10min/{arm}_ctc_s1/hydra/hydra_train.log").read_text()
        assert f"{arm}_pretrain_s1/checkpoint_last.pt" in ft_log and "num_updates 4" in ft_log
    # HuBERT's first iteration: k-means clusters of `unlabeled`'s MFCCs (learned there, with this
    # seed) label `unlabeled` and valid; the model pre-trains on them with the paper's 8% warm-up
    # (1 of 3 updates, rounded up) and fine-tunes like the others.
    km = exp / "labeled_10min/hubert_km_s1"
    km_req = json.loads((km / "labels.json").read_text())["request"]
    assert (km_req["features"], km_req["clusters"], km_req["train_split"], km_req["seed"]) == ("mfcc", 5, "unlabeled", 1)
    assert len((km / "unlabeled.km").read_text().splitlines()) == len(rows("unlabeled")) - 1
    assert (km / "valid.km").stat().st_size > 0
    pre_log = (exp / "labeled_10min/hubert_pretrain_s1/hydra/hydra_train.log").read_text()
    assert "'_name': 'sslasr_hubert'" in pre_log and str(km) in pre_log and "'train_subset': 'unlabeled'" in pre_log
    assert "'warmup_updates': 1" in pre_log and "'max_update': 3" in pre_log
    ft_log = (exp / "labeled_10min/hubert_ctc_s1/hydra/hydra_train.log").read_text()
    assert "hubert_pretrain_s1/checkpoint_last.pt" in ft_log and "num_updates 4" in ft_log
    # Joint masked CPC + CTC: one run from scratch, contrastive updates on unlabeled + labeled audio
    # alternating with CTC updates, the pre-training arms' total (3 + 4) with the baseline's masking.
    joint_log = (exp / "labeled_10min/joint_s1/hydra/hydra_train.log").read_text()
    assert "'_name': 'sslasr_joint'" in joint_log and "'unlabeled_subsets': 'unlabeled'" in joint_log
    assert "'train_subset': 'labeled_10min'" in joint_log and "'w2v_path': None" in joint_log
    assert "'max_update': 7" in joint_log and "'mask_prob': 0.2" in joint_log and "num_updates 7" in joint_log
    assert "'soft_ctc_weight': 0.5" in (exp / "labeled_10min/soft_ctc_mix_s1/hydra/hydra_train.log").read_text()

    # The page and its files: one row per run, the arm's ΔCER against its control.
    page = (tmp_path / "page" / "lowres.md").read_text()
    store = tmp_path / "page" / "lowres"
    for name in runs:
        assert f"| {name} |" in page
        facts = json.loads((store / name / "facts.json").read_text())
        assert facts["updates"] > 0 and facts["best_valid_cer"] is not None
        # an arm that labeled unlabeled audio says how much of it; a supervised run, none
        labels = "slimipl" in name or "soft" in name
        assert (facts["unlabeled_hours_labeled"] or 0) > 0 if labels else facts["unlabeled_hours_labeled"] is None
        hyps = (store / name / "test_ood.hyp").read_text().splitlines()
        assert len(hyps) == len((tmp_path / "data" / "test_ood.wrd").read_text().splitlines())
        # the sweep point each run belongs to (the oracle's is its own dropout and masking)
        assert name == "oracle_s1" or facts["sweep_point"] == "d0.1_m0.2", (name, facts)
        both = name.endswith("_both_s1")  # labels of each unlabeled split, where there are several
        assert set(facts["pl_cer_last_by_subset"] or ()) == ({"unlabeled", "unlabeled_ood"} if both else set())
    arm_row = next(line for line in page.splitlines() if line.startswith("| labeled_10min/slimipl_hard |"))
    assert "[" in arm_row.split("|")[6] and "rel.)" in arm_row.split("|")[6]  # test_ood ΔCER, interval
    csl_row = next(line for line in page.splitlines() if line.startswith("| labeled_10min/csl_frame | labeled_10min/ce_pl_frame |"))
    assert "[" in csl_row.split("|")[5] and "rel.)" in csl_row.split("|")[5]  # CSL against CE-PL, test_ood
    for name in prepared:
        assert f"| {name} |" not in page
    control_row = next(line for line in page.splitlines() if line.startswith("| labeled_10min/control |"))
    assert control_row.split("|")[6].strip() == ""  # a control has no control
    assert (tmp_path / "page" / "lowres.png").stat().st_size > 0
    assert facts["train_minutes"] > 0

    # A second call skips every finished run and trains nothing.
    marks = {name: (exp / name / "DONE").stat().st_mtime for name in runs}
    again = run(runner(tmp_path, "--seeds", "1", "--stage", "1", "--stop-stage", "10"))
    # (stage 3 meets seed 1's baseline again, as the best sweep point's first seed)
    assert again.count("done, skipped") == len(runs) + 1 and "training" not in again
    assert again.count("trained, skipped") == len(prepared) and "aligned" not in again and "frame labels" not in again
    assert marks == {name: (exp / name / "DONE").stat().st_mtime for name in runs}
    # --pretrain-arms (or --frame-arms) picks stage 10's arms (two processes can run two side by side)
    one = run(runner(tmp_path, "--seeds", "1", "--stage", "10", "--stop-stage", "10", "--frame-arms", "ce_pl"))
    assert "ce_pl_frame_s1: done, skipped" in one and "csl_frame" not in one and "w2v2" not in one, one
    assert "joint" not in one
    bad = subprocess.run(runner(tmp_path, "--stage", "10", "--pretrain-arms", "csl cpc"), cwd=REPO, env=env(),
                         capture_output=True, text=True)
    assert bad.returncode == 2 and ("--pretrain-arms takes csl, ce_pl, w2v2, w2v2_both, hubert, joint, joint_both, joint_ood, "
                                    "joint_mix, csl_oracle and ce_pl_oracle, not 'cpc'") in bad.stderr
    # joint_both, joint_ood and joint_mix (not by default): the joint run with the held-out voices'
    # audio in its contrastive stream too, in place of `unlabeled`, or repeated to weigh as much as
    # `unlabeled`; no labels of it; the same total updates, decoded and paired with the same control.
    minutes = [sum(int(line.split("\t")[1]) for line in (data / f"{s}.tsv").read_text().splitlines()[1:])
               for s in ("unlabeled", "unlabeled_ood")]
    repeats = round(minutes[0] / minutes[1])
    assert repeats > 1, minutes  # the tiny corpus's held-out split is the smaller: it is repeated
    mix = ",".join(["unlabeled"] + ["unlabeled_ood"] * repeats)
    out = run(runner(tmp_path, "--seeds", "1", "--stage", "10", "--stop-stage", "10",
                     "--pretrain-arms", "joint_both joint_ood joint_mix"))
    assert "joint_s1" not in out, out
    for arm, subsets in (("joint_both", "unlabeled,unlabeled_ood"), ("joint_ood", "unlabeled_ood"), ("joint_mix", mix)):
        assert (exp / f"labeled_10min/{arm}_s1/DONE").exists(), out
        log = (exp / f"labeled_10min/{arm}_s1/hydra/hydra_train.log").read_text()
        assert f"'unlabeled_subsets': '{subsets}'" in log and "num_updates 7" in log, arm
        assert f"unlabeled ({subsets.replace(',', ', ')}, labeled_10min)" in log, arm
    # --ood-teachers: stage 6's slimIPL adaptation on another model's fixed greedy labels of the
    # held-out voices (a joint arm's here, and the baseline's own), written into --data, measured,
    # and scored against the true transcripts as the run trains on them.
    out = run(runner(tmp_path, "--seeds", "1", "--stage", "6", "--stop-stage", "6", "--pl-updates", "6",
                     "--ood-teachers", "baseline joint_ood truth50"))
    assert "slimipl_hard_ood_s1: done, skipped" in out and "soft_ctc_mix_both_s1: done, skipped" in out
    for teacher in ("baseline", "joint_ood"):
        assert f"ood_labels_{teacher}_s1: {teacher}'s greedy labels of unlabeled_ood" in out
        generated = (exp / f"labeled_10min/ood_labels_{teacher}_s1/generate-unlabeled_ood.txt").read_text()
        hyps = dict(re.findall(r"^D-(\d+)\t[^\t]*\t(.*)$", generated, flags=re.M))
        labels = (data / f"unlabeled_ood.pl_{teacher}_s1.ltr").read_text().splitlines()
        assert len(labels) == len(rows("unlabeled_ood")) - 1 == len(hyps)
        assert [line.replace(" ", "").replace("|", " ").strip() for line in labels] == [
            hyps[str(i)] for i in range(len(labels))]
        assert "label CER" in (exp / f"labeled_10min/ood_labels_{teacher}_s1/label_quality.md").read_text()
        log = (exp / f"labeled_10min/slimipl_fixed_ood_{teacher}_s1/hydra/hydra_train.log").read_text()
        assert ("'pl_decoder': file" in log and f"'pl_labels': 'pl_{teacher}_s1.ltr'" in log
                and "'unlabeled_subsets': 'unlabeled_ood'" in log), teacher
        assert "baseline_d0.1_m0.2_s1/checkpoint_best.pt" in log, teacher  # the student: the baseline
        assert re.search(r"pl_cer[= ]\d", (exp / f"labeled_10min/slimipl_fixed_ood_{teacher}_s1/train.out").read_text())
        assert (exp / f"labeled_10min/slimipl_fixed_ood_{teacher}_s1/DONE").exists()
    # truth50: the baseline's labels (its decode, not made again), half the rows the true transcripts
    assert "truth50's greedy labels" not in out and "baseline's greedy labels" in out
    truth = (data / "unlabeled_ood.ltr").read_text().splitlines()
    baseline = (data / "unlabeled_ood.pl_baseline_s1.ltr").read_text().splitlines()
    mixed = (data / "unlabeled_ood.pl_truth50_s1.ltr").read_text().splitlines()
    assert sum(m == t for m, t in zip(mixed, truth)) >= round(len(truth) / 2)
    assert all(m in (t, b) for m, t, b in zip(mixed, truth, baseline))
    assert "label CER" in (exp / "labeled_10min/ood_labels_truth50_s1/label_quality.md").read_text()
    log = (exp / "labeled_10min/slimipl_fixed_ood_truth50_s1/hydra/hydra_train.log").read_text()
    assert "'pl_labels': 'pl_truth50_s1.ltr'" in log and (exp / "labeled_10min/slimipl_fixed_ood_truth50_s1/DONE").exists()
    again = run(runner(tmp_path, "--seeds", "1", "--stage", "6", "--stop-stage", "6", "--ood-teachers", "joint_ood"))
    assert "slimipl_fixed_ood_joint_ood_s1: done, skipped" in again and "greedy labels" not in again
    bad = subprocess.run(runner(tmp_path, "--stage", "6", "--ood-teachers", "joint_ood control"), cwd=REPO, env=env(),
                         capture_output=True, text=True)
    assert bad.returncode == 2 and ("--ood-teachers takes baseline, oracle, slimipl_oracle, joint, joint_both, joint_ood, "
                                    "joint_mix and truth<N> (N = 1 to 99), not 'control'") in bad.stderr
    # Stage 7's other PL arms (--pl-arms): slimIPL's labels by an EMA of the model, by the starting
    # baseline throughout (an EMA that never moves: its weights stay the baseline's while the
    # model's move), or at 1 labeled : 1 pseudo-labeled update; each against the same control.
    # Six updates: at 1 : 4 the first four only fill the cache (no step), then one labeled update.
    out = run(runner(tmp_path, "--seeds", "1", "--stage", "7", "--stop-stage", "7", "--pl-updates", "6",
                     "--pl-arms", "slimipl_ema slimipl_frozen slimipl_1to1"))
    assert "soft_ctc_mix" not in out
    init = load_checkpoint(str(exp / "labeled_10min/baseline_d0.1_m0.2_s1/checkpoint_best.pt"))["model"]
    for arm, decay, unsup in (("slimipl_ema", 0.999, 4), ("slimipl_frozen", 1.0, 4), ("slimipl_1to1", None, 1)):
        log = (exp / f"labeled_10min/{arm}_s1/hydra/hydra_train.log").read_text()
        assert "baseline_d0.1_m0.2_s1/checkpoint_best.pt" in log and f"'unsup_updates': {unsup}" in log, arm
        assert ("'store_ema': True" in log and f"'ema_decay': {decay}" in log) == (decay is not None), arm
        assert re.search(r"pl_cer[= ]\d", (exp / f"labeled_10min/{arm}_s1/train.out").read_text()), arm
        last = load_checkpoint(str(exp / f"labeled_10min/{arm}_s1/checkpoint_last.pt"))
        moved = [k for k, v in last["model"].items() if v.is_floating_point() and not torch.equal(v, init[k])]
        assert moved, arm
        if decay is not None:
            ema = last["extra_state"]["ema"]
            kept = [k for k in moved if torch.equal(ema[k].to(init[k].dtype), init[k])]
            assert kept == moved if decay == 1.0 else len(kept) < len(moved), arm
    bad = subprocess.run(runner(tmp_path, "--stage", "7", "--pl-arms", "soft_ctc_mix slimipl_hard"), cwd=REPO,
                         env=env(), capture_output=True, text=True)
    assert bad.returncode == 2 and ("--pl-arms takes soft_ctc_mix, slimipl_ema, slimipl_frozen and slimipl_1to1, "
                                    "not 'slimipl_hard'") in bad.stderr
    # CSL's and CE-PL's ceiling (not run by default): the same runs on `unlabeled`'s true transcripts,
    # aligned by the baseline and labelled in stage 9's classes (none fitted again), no teacher.
    out = run(runner(tmp_path, "--seeds", "1", "--stage", "10", "--stop-stage", "10",
                     "--pretrain-arms", "csl_oracle ce_pl_oracle"))
    oracle = exp / "labeled_10min/frame_oracle_s1"
    assert "frame_oracle_s1: unlabeled and valid aligned with their true transcripts" in out
    oracle_meta, stage9 = (json.loads((d / "units.json").read_text()) for d in (oracle, units))
    assert oracle_meta["units"] == stage9["units"] and oracle_meta["classes_from"] == str(units.resolve())
    assert (oracle / "dict.unit.txt").read_text().split()[::2] == (units / "dict.unit.txt").read_text().split()[::2]
    assert not (oracle / "labeled_10min.ali").exists()  # the labeled subset is not aligned again
    assert (oracle / "valid.unit").read_text() == (units / "valid.unit").read_text()  # same aligner, same classes
    assert len((oracle / "unlabeled.unit").read_text().splitlines()) == len(rows("unlabeled")) - 1
    for arm in ("csl", "ce_pl"):
        pre_log = (exp / f"labeled_10min/{arm}_frame_oracle_pretrain_s1/hydra/hydra_train.log").read_text()
        assert str(oracle) in pre_log and "'labels': ['unit']" in pre_log and "'train_subset': 'unlabeled'" in pre_log
        ft_log = (exp / f"labeled_10min/{arm}_frame_oracle_s1/hydra/hydra_train.log").read_text()
        assert f"{arm}_frame_oracle_pretrain_s1/checkpoint_last.pt" in ft_log and "num_updates 4" in ft_log
        assert (exp / f"labeled_10min/{arm}_frame_oracle_s1/DONE").exists()
    # labels in classes that are not stage 9's are refused before a pre-training that would learn them
    classes = (units / "units.json").read_text()
    (units / "units.json").write_text(json.dumps(dict(stage9, units={"|": "other"})))
    (exp / "labeled_10min/ce_pl_frame_oracle_pretrain_s1/TRAINED").unlink()
    proc = subprocess.run(runner(tmp_path, "--seeds", "1", "--stage", "10", "--stop-stage", "10",
                                 "--pretrain-arms", "ce_pl_oracle"), cwd=REPO, env=env(), capture_output=True, text=True)
    assert proc.returncode == 1 and f"the classes of {oracle} are not those of {units}" in proc.stderr
    assert "skipped" not in proc.stdout
    (units / "units.json").write_text(classes)
    (exp / "labeled_10min/ce_pl_frame_oracle_pretrain_s1/TRAINED").touch()

    # Stage 3 with a second seed: kill its training after the first checkpoint, then resume.
    cmd = runner(tmp_path, "--seeds", "1 2", "--stage", "3", "--stop-stage", "3", "--base-updates", "8")
    seed2 = exp / "labeled_10min" / "baseline_d0.1_m0.2_s2"
    proc = subprocess.Popen(cmd, cwd=REPO, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 900
    while not (seed2 / "checkpoint_last.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.5)
    assert proc.poll() is None, "the run finished before it could be killed"
    time.sleep(1.0)  # let the checkpoint's write finish (fairseq writes it atomically)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (seed2 / "DONE").exists()
    # It resumes only under its own budget (the LR schedule's phases scale with it).
    other = subprocess.run([c if c != "8" else "9" for c in cmd], cwd=REPO, env=env(), capture_output=True, text=True)
    assert other.returncode != 0 and "was trained with optimization.max_update=8, and would resume with 9" in other.stderr
    out = run(cmd)
    assert "baseline_d0.1_m0.2_s1: done, skipped" in out
    log = (seed2 / "hydra" / "hydra_train.log").read_text()
    assert "Loaded checkpoint" in log and "@ 0 updates" not in log.split("Loaded checkpoint", 1)[1].split("\n")[0]
    assert (seed2 / "DONE").exists() and "num_updates 8" in log

    # Stage 3 carried each seed's baseline (model only, fp16) into the page's store.  On a machine
    # without exp/, stage 4 restores seed 1's from there (the best sweep point read from the kept
    # validation curve) and trains the control from it; the store's figures are not rewritten.
    carried = store / "labeled_10min" / "baseline_d0.1_m0.2_s1" / "init.pt"
    trained = exp / "labeled_10min" / "baseline_d0.1_m0.2_s1" / "checkpoint_best.pt"
    weights = load_checkpoint(carried)["model"]  # the plugin's safe loader, as fairseq's is patched to
    assert carried.stat().st_size < trained.stat().st_size / 3
    assert {v.dtype for v in weights.values() if v.is_floating_point()} == {torch.float16}
    assert (store / "labeled_10min" / "baseline_d0.1_m0.2_s2" / "init.pt").exists()
    facts_before = (store / "labeled_10min" / "baseline_d0.1_m0.2_s1" / "facts.json").read_text()
    # A run whose figures the store keeps is not trained again (slimIPL's); one gone from both (the
    # control's) is.
    for name in ("baseline_d0.1_m0.2_s1", "control_s1", "slimipl_hard_s1"):
        shutil.rmtree(exp / "labeled_10min" / name)
    shutil.rmtree(store / "labeled_10min" / "control_s1")
    out = run(runner(tmp_path, "--seeds", "1", "--stage", "4", "--stop-stage", "5"))
    assert "baseline_d0.1_m0.2_s1: restored from" in out and "control_s1: training" in out
    assert "slimipl_hard_s1: trained elsewhere, its figures kept in" in out and "slimipl_hard_s1: training" not in out
    assert "slimipl_oracle_s1: done, skipped" in out
    control_log = (exp / "labeled_10min/control_s1/hydra/hydra_train.log").read_text()
    assert "baseline_d0.1_m0.2_s1/checkpoint_best.pt" in control_log and "num_updates 4" in control_log
    assert (exp / "labeled_10min" / "baseline_d0.1_m0.2_s1" / "RESTORED").exists()
    run(runner(tmp_path, "--seeds", "1", "--stage", "11", "--stop-stage", "11"))
    page = (tmp_path / "page" / "lowres.md").read_text()
    assert "| labeled_10min/csl_frame_oracle | labeled_10min/ce_pl_frame_oracle |" in page  # the ceiling's pair
    # stage 6's fixed-label runs, listed by their labels' CER (kept in the store beside the runs)
    for teacher in ("baseline", "joint_ood", "truth50"):
        quality = (store / f"labeled_10min/ood_labels_{teacher}_s1/label_quality.md").read_text()
        assert quality == (exp / f"labeled_10min/ood_labels_{teacher}_s1/label_quality.md").read_text()
        cer = re.search(r"label CER ([0-9.]+)", quality).group(1)
        assert re.search(rf"^\| {teacher} \| 1 \| {cer} \| [0-9.]+ \| [+-]", page, flags=re.M), teacher
    assert (store / "labeled_10min" / "baseline_d0.1_m0.2_s1" / "facts.json").read_text() == facts_before
    # Stages 9-10 on such a machine: students whose figures are kept need no teacher, no pre-training.
    for name in ("frame_teacher_s1", "frame_units_s1", "frame_pl_s1", "csl_frame_s1", "csl_frame_pretrain_s1",
                 "w2v2_ctc_s1", "w2v2_pretrain_s1"):
        shutil.rmtree(exp / "labeled_10min" / name)
    out = run(runner(tmp_path, "--seeds", "1", "--stage", "9", "--stop-stage", "10", "--pretrain-arms", "csl w2v2"))
    assert "seed 1: no CSL or CE-PL run to train" in out and "training" not in out, out
    assert "csl_frame_s1: trained elsewhere" in out and "w2v2_ctc_s1: trained elsewhere" in out

    # A new sweep point wins (here: a fake one, its kept curve at 0% valid CER): the runs of
    # d0.1_m0.2 are refused rather than resumed with the new point's dropout or counted as its,
    # the control here (its log says which point) or kept in the store (its facts), and so is a new
    # arm whose seed's control is of the old point (it would be paired with it).
    new = store / "labeled_10min" / "baseline_d0.3_m0.6_s1"
    shutil.copytree(store / "labeled_10min" / "baseline_d0.1_m0.2_s1", new)
    (new / "valid_curve.tsv").write_text("num_updates\tloss\tuer\twer\n2\t1.0\t0.0\t0.0\n")
    two = ["--sweep", "d0.1_m0.2 d0.3_m0.6"]

    def refused(stage, where, *more):
        proc = subprocess.run(runner(tmp_path, "--seeds", "1", "--stage", stage, "--stop-stage", stage, *two, *more),
                              cwd=REPO, env=env(), capture_output=True, text=True)
        assert proc.returncode == 1 and "control_s1: refused" in proc.stdout, proc.stdout + proc.stderr
        assert ("control_s1 started from sweep point d0.1_m0.2" in proc.stderr and where in proc.stderr
                and "now starts from d0.3_m0.6" in proc.stderr and "pass --sweep d0.1_m0.2" in proc.stderr)
        assert "training" not in proc.stdout

    refused("4", "control_s1/hydra/hydra_train.log")
    shutil.rmtree(exp / "labeled_10min" / "control_s1")  # as if trained on another machine
    refused("4", "control_s1/facts.json")
    for name in ("joint_s1",):  # an arm not run yet
        shutil.rmtree(exp / "labeled_10min" / name)
        shutil.rmtree(store / "labeled_10min" / name)
    refused("10", "control_s1/facts.json", "--pretrain-arms", "joint")
    assert not (exp / "labeled_10min" / "joint_s1").exists()
