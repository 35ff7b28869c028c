"""Joint masked CPC + CTC: real fairseq-hydra-train runs of every config, resume, decoding."""
import os
import re
import signal
import subprocess

import pytest

from sslasr_plugin.checkpoint import load_checkpoint
from sslasr_plugin.data.alternating_batches import SUP, UNSUP
from tests.helpers import BIN, REPO, generate, hq, hydra_train, run_cli


def _modes(proc):
    """Per-update kind from train_inner lines (log_interval=1): which loss has a value."""
    out = {}
    for line in proc.stdout.splitlines():
        m = re.search(r"num_updates=(\d+)", line)
        if "train_inner" in line and m:
            unsup = re.search(r"unsup_loss=[\d.]+", line) is not None
            sup = re.search(r"\bsup_loss=[\d.]+", line) is not None
            assert unsup != sup, line
            out[int(m.group(1)) - 1] = UNSUP if unsup else SUP
    return [out[u] for u in sorted(out)]


def _train(corpus, save_dir, *overrides, check=True):
    return hydra_train("examples/joint", "joint", corpus, save_dir, "common.log_format=simple", *overrides, check=check)


# variant: (overrides, expected modes of the 3 updates)
VARIANTS = {
    "joint": ((), [UNSUP, SUP, UNSUP]),
    "two_stage": (("+variant=two_stage", "task.pretrain_updates=2"), [UNSUP, UNSUP, SUP]),
    "supervised_only": (("+variant=supervised_only",), [SUP, SUP, SUP]),
    "single_optimizer": (("+variant=single_optimizer",), [UNSUP, SUP, UNSUP]),
    "lr_ratio_4": (("+variant=lr_ratio_4",), [UNSUP, SUP, UNSUP]),
    "update_ratio_5": (("+variant=update_ratio_5",), [UNSUP, UNSUP, UNSUP]),
}


def test_every_variant_is_run():
    files = {p.stem for p in (REPO / "examples" / "joint" / "variant").glob("*.yaml")}
    assert files == set(VARIANTS) - {"joint"}


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_config_trains_on_schedule_and_decodes(tiny_corpus, tmp_path, variant):
    overrides, expected = VARIANTS[variant]
    proc = _train(tiny_corpus, tmp_path, *overrides)
    assert _modes(proc) == expected
    ckpt = load_checkpoint(tmp_path / "checkpoint_last.pt")
    state = ckpt["last_optimizer_state"]["state"]
    kinds = {frozenset(s) for s in state.values()}
    if variant == "single_optimizer":
        assert kinds == {frozenset({"shared"})}
    else:
        assert kinds <= {frozenset(expected), frozenset({UNSUP}), frozenset({SUP})}
    if variant in ("joint", "supervised_only"):  # one decodable model per kind of run is enough
        out = generate(tiny_corpus, tmp_path / "checkpoint_last.pt", "test")
        assert re.search(r"WER: \d+\.\d+", out.stdout + out.stderr)


@pytest.mark.slow
def test_run_killed_with_sigkill_resumes_both_optimizer_states_and_the_schedule(tiny_corpus, tmp_path):
    """Killed (SIGKILL) after update 4, checkpoint at update 3 (the next one, at 6, two updates
    away): the resumed run redoes updates 4-6 on the same schedule, and ends with the step counts
    of an uninterrupted 6-update run in both moment sets, i.e. both optimizer states came back
    from the checkpoint, not afresh."""
    straight = _train(tiny_corpus, tmp_path / "straight", "optimization.max_update=6")
    assert _modes(straight) == [UNSUP, SUP, UNSUP, SUP, UNSUP, SUP]
    killed_dir = tmp_path / "killed"
    args = ["fairseq-hydra-train", "--config-dir", "examples/joint", "--config-name", "joint",
            f"task.data={hq(tiny_corpus)}", f"checkpoint.save_dir={hq(killed_dir)}",
            f"hydra.run.dir={hq(killed_dir / 'hydra')}", "optimization.max_update=6", "checkpoint.save_interval_updates=3",
            "dataset.validate_interval_updates=3", "common.log_interval=1", "dataset.num_workers=0",
            "common.user_dir=sslasr_plugin", "common.log_format=simple"]
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if re.search(r"num_updates=4,", line):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert load_checkpoint(killed_dir / "checkpoint_last.pt")["optimizer_history"][-1]["num_updates"] == 3
    resumed = _train(tiny_corpus, killed_dir, "optimization.max_update=6")
    assert "(epoch 2 @ 3 updates)" in resumed.stdout or "(epoch 1 @ 3 updates)" in resumed.stdout
    assert _modes(resumed) == _modes(straight)[3:] == [SUP, UNSUP, SUP]

    def steps(path):
        state = load_checkpoint(path)["last_optimizer_state"]["state"]
        return sorted(tuple(sorted((kind, float(s[kind]["step"])) for kind in s)) for s in state.values())

    assert steps(killed_dir / "checkpoint_last.pt") == steps(tmp_path / "straight" / "checkpoint_last.pt")
    ckpt = load_checkpoint(killed_dir / "checkpoint_last.pt")
    position = load_checkpoint(tmp_path / "straight" / "checkpoint_last.pt")["extra_state"]["train_iterator"]
    assert ckpt["extra_state"]["train_iterator"]["iterations_in_epoch"] == position["iterations_in_epoch"] == 6
    state = ckpt["last_optimizer_state"]["state"].values()
    # Shared parameters: 3 steps of each kind (not 2 + 1 or 3 + 1: both moment sets came back from
    # the checkpoint).  The CTC head has only supervised moments, the contrastive projections only
    # unsupervised ones.
    shared = [s for s in state if set(s) == {UNSUP, SUP}]
    assert shared and all(float(s[UNSUP]["step"]) == 3 and float(s[SUP]["step"]) == 3 for s in shared)
    head = [s for s in state if set(s) == {SUP}]
    assert len(head) == 2 and all(float(s[SUP]["step"]) == 3 for s in head)
    assert all(float(s[UNSUP]["step"]) == 3 for s in state if set(s) == {UNSUP})


@pytest.mark.slow
def test_stock_optimizer_is_refused_with_the_fix(tiny_corpus, tmp_path):
    proc = _train(tiny_corpus, tmp_path, "optimizer._name=adam", "~optimizer.unsup_lr_scale",
                  "~optimizer.sup_lr_scale", "~optimizer.unsup_clip_norm", "~optimizer.sup_clip_norm", check=False)
    assert proc.returncode != 0
    assert "optimizer._name=sslasr_dual_adam" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_contrastive_updates_need_the_pretraining_modules(tiny_corpus, tmp_path):
    proc = _train(tiny_corpus, tmp_path, "model.encoder.keep_pretraining_modules=false", check=False)
    assert proc.returncode != 0
    assert "keep_pretraining_modules=true" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_bf16_run_through_fairseq_half_precision_optimizer(tiny_corpus, tmp_path):
    """--bf16: fairseq casts the model (the log-mel front end keeps fp32) and wraps
    sslasr_dual_adam in its FP16Optimizer; the schedule and both moment sets are unchanged."""
    proc = _train(tiny_corpus, tmp_path, "common.bf16=true")
    assert _modes(proc) == [UNSUP, SUP, UNSUP]
    ckpt = load_checkpoint(tmp_path / "checkpoint_last.pt")
    assert ckpt["cfg"]["common"]["bf16"]
    # fairseq's fp32 master copies zero-fill missing gradients: a parameter may hold a moment
    # set of a mode it never took part in, but that set never made a step.
    steps = {tuple(float(s[m]["step"]) if m in s else 0.0 for m in (UNSUP, SUP))
             for s in ckpt["last_optimizer_state"]["state"].values()}
    assert steps == {(2.0, 1.0), (0.0, 1.0), (2.0, 0.0)}  # shared, CTC head, contrastive projections


@pytest.mark.slow
def test_quantized_targets_option(tiny_corpus, tmp_path):
    """The paper's targets are continuous; wav2vec 2.0's quantized ones (with its codebook
    diversity penalty) are an option of the same config."""
    proc = _train(tiny_corpus, tmp_path, "model.encoder.quantize_targets=true", "criterion.unsup_loss_weights=[0.1,0.0]")
    assert _modes(proc) == [UNSUP, SUP, UNSUP]
    assert re.search(r"unsup_prob_perplexity=[\d.]+", proc.stdout)
    ckpt = load_checkpoint(tmp_path / "checkpoint_last.pt")
    assert any(k.startswith("w2v_encoder.w2v_model.quantizer.") for k in ckpt["model"])


@pytest.mark.slow
def test_demo_script_runs_arms_and_prints_the_table(tiny_corpus, tmp_path, monkeypatch):
    for key, value in {"SUP_UPDATES": "2", "ARMS": "supervised_only joint", "DATA": str(tiny_corpus),
                       "EXP": str(tmp_path)}.items():
        monkeypatch.setenv(key, value)
    proc = run_cli(["bash", "examples/joint/run_demo.sh"])
    rows = re.findall(r"^\| (\w+/test(?:_ood)?) \| 8 \|", proc.stdout, flags=re.M)
    assert rows == ["supervised_only/test", "supervised_only/test_ood", "joint/test", "joint/test_ood"]
    assert (tmp_path / "joint_results.md").read_text().count("\n") == 6
    # with supervised_only among the arms, the joint rows carry their paired CER/WER difference from it
    interval = r"[+-]\d+\.\d\d \[[+-]\d+\.\d\d, [+-]\d+\.\d\d\]"
    assert re.search(rf"^\| joint/test_ood \| 8 \|.* \| {interval} \| {interval} \|$", proc.stdout, flags=re.M), proc.stdout
    # the curves: each arm's validations at the CTC updates it had made (the same 2 by the end)
    assert (tmp_path / "joint_curves.png").stat().st_size > 0
    last = {arm: (tmp_path / "joint_curves" / f"{arm}.tsv").read_text().splitlines()[-1].split("\t")[:3]
            for arm in ("supervised_only", "joint")}
    assert last == {"supervised_only": ["2", "2", "0"], "joint": ["4", "2", "2"]}, last
