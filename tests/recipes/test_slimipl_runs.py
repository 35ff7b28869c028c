"""slimIPL and soft pseudo-labels in real fairseq-hydra-train runs: every variant, alignment with
the audio, collapse, resume after a kill, the demo script."""
import os
import re
import signal
import subprocess

import pytest
import torch

from sslasr_plugin.checkpoint import load_checkpoint
from sslasr_plugin.data.alternating_batches import Schedule
from sslasr_plugin.data.pl_cache import CachePlan
from tests.helpers import BIN, REPO, generate, hydra_train, run_cli

pytestmark = pytest.mark.slow

SLIMIPL = "examples/slimipl"
BLANK = 0  # fairseq's <s>, the CTC blank
# updates: 0 warm-up (labeled), then cycles of 2 pseudo-labeled + 1 labeled; update 1 fills the
# 1-batch cache (labels a batch, no update: flashlight's recipe), update 2 trains on it
SCHEDULE = ("task.warmup_updates=1", "task.sup_updates=1", "task.cache_size=1",
            "task.cache_replace_prob=0.5", "dataset.max_tokens=100000")
UPDATE = re.compile(r"\[train_inner\].*num_updates=(\d+)")


def _train(corpus, save_dir, *overrides, check=True):
    if "+variant=supervised_only" not in overrides:
        overrides += ("task.unsup_updates=2",)
    return hydra_train(SLIMIPL, "slimipl", corpus, save_dir, *SCHEDULE, *overrides, check=check)


def _update_kinds(stdout):
    kinds = {}
    for line in stdout.splitlines():
        m = UPDATE.search(line)
        if m:
            kinds[int(m.group(1))] = ("pl" if re.search(r"pl_loss=[\d.]", line) else
                                      "sup" if re.search(r"sup_loss=[\d.]", line) else
                                      "fill" if re.search(r"pl_fill=\d", line) else "?")
    return [kinds[u] for u in sorted(kinds)]


VARIANTS = {
    "slimipl": ((), ["sup", "fill", "pl"]),
    "supervised_only": (("+variant=supervised_only",), ["sup", "sup", "sup"]),
    "ema": (("+variant=ema",), ["sup", "fill", "pl"]),
    "soft": (("+variant=soft",), ["sup", "fill", "pl"]),
    "soft_ctc_mix": (("+variant=soft_ctc_mix",), ["sup", "fill", "pl"]),
    "soft_blank": (("+variant=soft_blank",), ["sup", "fill", "pl"]),
    "soft_temperature": (("+variant=soft_temperature",), ["sup", "fill", "pl"]),
    "soft_entropy": (("+variant=soft_entropy",), ["sup", "fill", "pl"]),
    "soft_sampled": (("+variant=soft_sampled",), ["sup", "fill", "pl"]),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_config_trains_pseudo_labels_and_decodes(variant, tiny_corpus, tmp_path):
    overrides, kinds = VARIANTS[variant]
    proc = _train(tiny_corpus, tmp_path, *overrides)
    assert _update_kinds(proc.stdout) == kinds
    state = load_checkpoint(tmp_path / "checkpoint_last.pt")
    cache = state["extra_state"]["SlimIplTask"]["slimipl_cache"]
    if "pl" not in kinds:
        assert "pl_blank_ratio" not in proc.stdout and cache["entries"] == []
        return
    # the first pseudo-labeled update labels its batch into the 1-entry cache, the second trains on it
    for key in ("pl_blank_ratio", "pl_entropy", "pl_token_rate", "pl_rate_ratio", "pl_cer", "pl_collapsed"):
        assert re.search(rf"{key}=[\d.]+", proc.stdout), key
    (entry,) = cache["entries"]
    (part,) = entry["parts"]
    soft = variant.startswith("soft")
    assert len(part["ids"]) == len(part["tokens"]) and (len(part["log_probs"]) == len(part["ids"])) == soft
    assert ("pl_soft_ce=" in proc.stdout) == soft
    assert ("pl_sampled_rate=" in proc.stdout) == (variant == "soft_sampled")
    if variant == "ema":
        assert "ema" in state["extra_state"]
    if variant == "slimipl":  # the unlabeled audio labeled so far: the utterances of every labeled batch
        ever = cache["ever_labeled"]
        sizes = [int(row.split("\t")[1]) for row in (tiny_corpus / "unlabeled.tsv").read_text().splitlines()[1:]]
        assert len(ever) == len(sizes) and ever.any() and not ever.all()
        first = len((tiny_corpus / "labeled.tsv").read_text().splitlines()) - 1  # ids: labeled, then unlabeled
        assert all(ever[i - first] for i in part["ids"].tolist())
        hours = sum(size for size, on in zip(sizes, ever.tolist()) if on) / 16000 / 3600
        logged = float(re.findall(r"pl_unlabeled_h=([\d.]+)", proc.stdout)[-1])
        assert logged == pytest.approx(hours, abs=6e-5)
    if variant in ("slimipl", "soft"):
        out = generate(tiny_corpus, tmp_path / "checkpoint_best.pt")
        assert re.search(r"WER: [\d.]+", out.stdout)


def test_pseudo_labels_align_with_audio_and_oracle(tiny_corpus, tmp_path):
    """Cached soft labels have one row per encoder frame of their utterance; the greedy tokens
    are the rows' best path; the oracle rate was measured against the corpus transcripts."""
    proc = _train(tiny_corpus, tmp_path, "+variant=soft")
    rows = [line.split("\t") for line in open(os.path.join(tiny_corpus, "labeled.tsv")).read().splitlines()[1:]]
    tokens = sum(len(line.split()) for line in open(os.path.join(tiny_corpus, "labeled.ltr")))
    reference = float(re.search(r"labeled data: ([\d.]+) tokens per second", proc.stdout).group(1))
    assert reference == pytest.approx(tokens / (sum(int(r[1]) for r in rows) / 16000), abs=0.01)
    state = load_checkpoint(tmp_path / "checkpoint_last.pt")
    (part,) = state["extra_state"]["SlimIplTask"]["slimipl_cache"]["entries"][0]["parts"]
    from fairseq.data.audio.raw_audio_dataset import FileAudioDataset

    labeled = len(open(os.path.join(tiny_corpus, "labeled.tsv")).readlines()) - 1
    unlabeled = FileAudioDataset(os.path.join(tiny_corpus, "unlabeled.tsv"), sample_rate=16000)
    for i, lp, tokens in zip(part["ids"].tolist(), part["log_probs"], part["tokens"]):
        samples = unlabeled.sizes[i - labeled]
        frames = (((samples - 400) // 160 + 1) - 3) // 2 + 1  # 25 ms / 10 ms mel frames, then conv (3, stride 2)
        assert lp.shape[0] == frames
        path = lp.float().argmax(-1)
        runs = [int(k) for t, k in enumerate(path.tolist()) if k != BLANK and (t == 0 or path[t - 1] != k)]
        assert tokens.tolist() == [k for k in runs if k not in (1, 2)]


def test_collapse_is_reported_and_stops_the_run_when_asked(tiny_corpus, tmp_path):
    # min ratio 100: any model "collapses"; the run must say so and stop with stop_on_collapse
    proc = _train(tiny_corpus, tmp_path / "stop", "task.collapse_window=1", "task.collapse_min_ratio=100",
                  "task.stop_on_collapse=true", check=False)
    assert proc.returncode != 0
    assert "PSEUDO-LABEL COLLAPSE at update 1" in proc.stdout + proc.stderr
    proc = _train(tiny_corpus, tmp_path / "warn", "task.collapse_window=1", "task.collapse_min_ratio=100")
    assert "PSEUDO-LABEL COLLAPSE at update 1" in proc.stdout and "pl_collapsed=1" in proc.stdout
    proc = _train(tiny_corpus, tmp_path / "never", "task.collapse_window=1", "task.collapse_min_ratio=0")
    assert "COLLAPSE" not in proc.stdout and "pl_collapsed=0" in proc.stdout


def _run_args(corpus, save_dir, max_update, *overrides):
    return [
        "fairseq-hydra-train", "--config-dir", SLIMIPL, "--config-name", "slimipl", f"task.data={corpus}",
        f"checkpoint.save_dir={save_dir}", f"hydra.run.dir={save_dir}/hydra", f"optimization.max_update={max_update}",
        "checkpoint.save_interval_updates=3", "dataset.validate_interval_updates=100", "common.log_interval=1",
        "dataset.num_workers=0", "common.user_dir=sslasr_plugin", "task.warmup_updates=1", "task.unsup_updates=2",
        "task.sup_updates=1", "task.cache_size=2", "task.cache_replace_prob=0.5", "dataset.max_tokens=100000",
        "model.mask_prob=0", "model.mask_channel_prob=0", "model.dropout=0", "model.attention_dropout=0",
        "model.final_dropout=0", "task.pl_dropout=null", "lr_scheduler.phase_ratio=null",  # LR not a function of
        "++lr_scheduler.warmup_steps=2", "++lr_scheduler.hold_steps=100", "++lr_scheduler.decay_steps=100",  # max_update
        *overrides,
    ]


def _assert_same_training_state(a_path, b_path):
    """Same cache (ids, labels, reads), the same utterances labeled and trained on at every read
    (the digest chained over the reads' ids), and same weights."""
    a, b = load_checkpoint(a_path), load_checkpoint(b_path)
    assert a["optimizer_history"][-1]["num_updates"] == b["optimizer_history"][-1]["num_updates"]
    ca, cb = (s["extra_state"]["SlimIplTask"]["slimipl_cache"] for s in (a, b))
    assert ca["reads"] == cb["reads"] and len(ca["entries"]) == len(cb["entries"]) == 2
    assert len(ca["read_ids_sha1"]) == 40 and ca["read_ids_sha1"] == cb["read_ids_sha1"]
    assert torch.equal(ca["ever_labeled"], cb["ever_labeled"]) and ca["ever_labeled"].any()  # carried over a resume
    for ea, eb in zip(ca["entries"], cb["entries"]):
        (pa,), (pb,) = ea["parts"], eb["parts"]
        assert torch.equal(pa["ids"], pb["ids"])
        assert [t.tolist() for t in pa["tokens"]] == [t.tolist() for t in pb["tokens"]]
    for k, v in a["model"].items():
        assert torch.allclose(v.float(), b["model"][k].float(), atol=1e-5), k
    assert ("ema" in a["extra_state"]) == ("ema" in b["extra_state"])
    if "ema" in a["extra_state"]:  # the EMA teacher that labels the unlabeled batches
        ema_a, ema_b = a["extra_state"]["ema"], b["extra_state"]["ema"]
        assert ema_a.keys() == ema_b.keys() and ema_a
        for k, v in ema_a.items():
            assert torch.allclose(v.float(), ema_b[k].float(), atol=1e-5), k


def test_resume_continues_with_the_same_cache_and_schedule(tiny_corpus, tmp_path):
    """3 updates, then resumed to 7, against 7 in one go: same update kinds, same cache (ids,
    labels, reads) and same weights (no randomness left: masking and dropout off)."""
    straight = run_cli(_run_args(tiny_corpus, tmp_path / "straight", 7))
    run_cli(_run_args(tiny_corpus, tmp_path / "resumed", 3))
    resumed = run_cli(_run_args(tiny_corpus, tmp_path / "resumed", 7))
    assert "pseudo-label cache restored: 2 of 2 batches, 0 reads" in resumed.stdout
    assert _update_kinds(straight.stdout) == ["sup", "fill", "fill", "sup", "pl", "pl", "sup"]
    assert _update_kinds(resumed.stdout) == ["sup", "pl", "pl", "sup"]  # updates 4..7
    assert load_checkpoint(tmp_path / "straight" / "checkpoint_last.pt")[
        "extra_state"]["SlimIplTask"]["slimipl_cache"]["reads"] == 2
    _assert_same_training_state(tmp_path / "straight" / "checkpoint_last.pt",
                                tmp_path / "resumed" / "checkpoint_last.pt")
    # a resume under settings the cache's history depends on is refused as it loads, naming the change
    # (the batches are checked whether fairseq builds them before or after it restores the cache)
    for change, named in (("dataset.max_tokens=200000", "the unlabeled batches differ: "),
                          ("common.seed=2", "common.seed: 1 in the checkpoint, 2 now")):
        refused = run_cli(_run_args(tiny_corpus, tmp_path / "resumed", 9, change), check=False)
        assert refused.returncode != 0 and "cannot continue" in refused.stderr and named in refused.stderr, (
            change, refused.stderr[-3000:])
    assert _optimizer_steps(tmp_path / "resumed" / "checkpoint_last.pt") == 5  # nothing was trained or saved


def _optimizer_steps(path) -> int:
    """Adam's step count (every parameter's is the same)."""
    steps = {int(s["step"]) for s in load_checkpoint(path)["last_optimizer_state"]["state"].values()}
    assert len(steps) == 1, steps
    return steps.pop()


@pytest.mark.parametrize("train_while_filling,kinds,steps", [
    ("false", ["sup", "fill", "fill", "sup", "pl", "pl", "sup"], 5),
    ("true", ["sup", "pl", "pl", "sup", "pl", "pl", "sup"], 7),
])
def test_cache_filling_makes_no_update_unless_asked(tiny_corpus, tmp_path, train_while_filling, kinds, steps):
    """7 updates with a 2-batch cache: updates 1 and 2 fill it.  flashlight's recipe (the default)
    labels and stores there without an update, so Adam steps 5 times; the update counter (and the LR
    schedule) still counts 7.  train_while_filling=true trains on each filling batch too: 7 steps."""
    proc = run_cli(_run_args(tiny_corpus, tmp_path, 7, f"task.train_while_filling={train_while_filling}"))
    assert _update_kinds(proc.stdout) == kinds
    path = tmp_path / "checkpoint_last.pt"
    assert load_checkpoint(path)["optimizer_history"][-1]["num_updates"] == 7
    assert _optimizer_steps(path) == steps
    assert ("pl_fill=1" in proc.stdout) == (train_while_filling == "false")


def test_run_killed_with_sigkill_resumes_to_the_uninterrupted_state(tiny_corpus, tmp_path):
    """14 updates on unlabeled_ood (5 batches: 9-update epochs), killed after update 7 (checkpoint
    at 6) and resumed, against 14 in one go.  The resumed part crosses the epoch boundary and
    trains, right after, on a slot it has just relabeled (checked on the cache's plan below).  The
    EMA teacher is used: its state comes back too (the model-labeled resume is the test above)."""
    args = (tiny_corpus, tmp_path / "straight", 14, "task.unlabeled_subsets=unlabeled_ood", "+variant=ema")
    run_cli(_run_args(*args))
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", PYTHONUNBUFFERED="1")
    killed = _run_args(tiny_corpus, tmp_path / "killed", *args[2:])
    proc = subprocess.Popen([str(a) for a in killed], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:  # checkpoint at update 6; killed after update 7, two updates before the next
        if re.search(r"num_updates=7,", line):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert load_checkpoint(tmp_path / "killed" / "checkpoint_last.pt")["optimizer_history"][-1]["num_updates"] == 6
    resumed = run_cli(killed)
    assert "pseudo-label cache restored: 2 of 2 batches, 2 reads" in resumed.stdout
    assert "begin training epoch 2" in resumed.stdout
    # reads of the full cache after the resume: 2 .. 6; read 3 relabels the slot read 4 trains on
    schedule, plan = Schedule(1, 2, 1, warmup="sup"), CachePlan(2, 0.5, seed=1)
    assert schedule.count("unsup", 6) - 2 == 2 and schedule.count("unsup", 14) - 2 == 7
    assert plan(3) == (1, True) and plan(4)[0] == 1
    _assert_same_training_state(tmp_path / "straight" / "checkpoint_last.pt",
                                tmp_path / "killed" / "checkpoint_last.pt")


def test_demo_script_runs_every_arm_and_plots(tiny_corpus, ctc_checkpoint, tmp_path):
    env_args = ["env", f"DATA={tiny_corpus}", f"EXP={tmp_path}", f"INIT={ctc_checkpoint}", "UPDATES=3", "CACHE=1",
                "ARMS=supervised_only soft"]
    proc = run_cli([*env_args, "bash", "examples/slimipl/run_demo.sh"])
    table = (tmp_path / "slimipl_results.md").read_text()
    for arm in ("supervised_only", "soft"):
        assert re.search(rf"\| {arm}/test \| [\d.]+ \|", table), table
    png = tmp_path / "slimipl_curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "wrote" in proc.stdout
    assert list((tmp_path / "slimipl_soft" / "tensorboard").rglob("events.out.tfevents.*"))
    missing = run_cli(["env", f"INIT={tmp_path}/none.pt", "bash", "examples/slimipl/run_demo.sh"], check=False)
    assert missing.returncode == 2 and "run 'bash run.sh demo' first" in missing.stderr
