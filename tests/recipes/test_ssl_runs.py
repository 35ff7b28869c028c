"""The self-supervised family (examples/ssl): the HuBERT label tool's command line, iteration 2,
the label-rate check in a run, and tiny real runs of every config through fairseq-hydra-train,
fine-tuning and fairseq-generate."""
import json
import re

import numpy as np
import pytest
import torch

from data_prep import hubert_labels as hl
from sslasr_plugin.checkpoint import load_checkpoint
from tests.helpers import REPO, compose_example, generate, hydra_train, run_cli

pytestmark = pytest.mark.slow

SSL = REPO / "examples" / "ssl"


def _labels_cli(corpus, out, *extra, check=True):
    return run_cli(["python", "-m", "data_prep.hubert_labels", "--data", corpus, "--out", out, "--clusters", "8",
                    "--steps", "10", "--batch-frames", "1000", "--no-progress", *extra], check=check)


def _label_counts(path):
    return [len(line.split()) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def mfcc_labels(tiny_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("km1")
    _labels_cli(tiny_corpus, out, "--features", "mfcc")
    return out


def test_mfcc_labels_one_per_frame_same_kmeans_for_every_split(tiny_corpus, mfcc_labels, tmp_path):
    meta = json.loads((mfcc_labels / "labels.json").read_text())
    assert meta["label_rate"] == 100 and meta["request"]["train_split"] == "unlabeled"
    for split in ("unlabeled", "valid"):
        samples = [int(r.split("\t")[1]) for r in (tiny_corpus / f"{split}.tsv").read_text().splitlines()[1:]]
        assert _label_counts(mfcc_labels / f"{split}.km") == [hl.mfcc_frames(n) for n in samples]
        # valid is labelled by the centroids learned on unlabeled: recompute from the dump.
        feats, _ = hl.load_dump(mfcc_labels / "feats", split, 39)
        labels, _ = hl.assign(feats, np.load(mfcc_labels / "kmeans.npy"))
        written = np.concatenate([np.array(l.split(), dtype=int) for l in
                                  (mfcc_labels / f"{split}.km").read_text().splitlines()])
        assert np.array_equal(labels, written)
    assert (mfcc_labels / "dict.km.txt").read_text().splitlines() == [f"{i} 1" for i in range(8)]


def test_label_tool_never_overwrites_other_settings(tiny_corpus, mfcc_labels, tmp_path):
    before = {p.name: p.stat().st_mtime_ns for p in mfcc_labels.glob("*.km")}
    again = _labels_cli(tiny_corpus, mfcc_labels, "--features", "mfcc")  # same request: reuses everything
    assert again.returncode == 0
    other = _labels_cli(tiny_corpus, mfcc_labels, "--features", "mfcc", "--seed", "2", check=False)
    assert other.returncode == 2 and "other settings (seed differ" in other.stderr and "--overwrite" in other.stderr
    assert {p.name: p.stat().st_mtime_ns for p in mfcc_labels.glob("*.km")}.keys() == before.keys()
    assert json.loads((mfcc_labels / "request.json").read_text())["seed"] == 1
    missing = _labels_cli(tiny_corpus, tmp_path / "x", "--features", "model", check=False)
    assert missing.returncode == 2 and "--checkpoint" in missing.stderr


def test_hubert_label_rate_mismatch_stops_training(tiny_corpus, mfcc_labels, tmp_path):
    # 100 Hz MFCC labels given to the iteration-2 config (label_rate 50): an error, not warnings.
    proc = hydra_train(str(SSL), "hubert_iter2", tiny_corpus, tmp_path / "h", f"task.label_dir={mfcc_labels}",
                       check=False)
    assert proc.returncode != 0
    assert re.search(r"valid\.km line 1: \d+ labels for \S+ \([0-9.]+ s, line 2 of valid.tsv\), i.e. 9\d\.\d labels/s, "
                     r"but task.label_rate=50", proc.stderr)


# ----------------------------------------------------------------- HuBERT iterations 1 and 2
def test_hubert_iteration_1_then_2_then_finetune_and_decode(tiny_corpus, mfcc_labels, tmp_path):
    it1 = tmp_path / "hubert1"
    hydra_train(str(SSL), "hubert_iter1", tiny_corpus, it1, f"task.label_dir={mfcc_labels}")
    state = load_checkpoint(it1 / "checkpoint_last.pt")
    assert state["cfg"]["model"]["_name"] == "sslasr_hubert" and state["cfg"]["model"]["label_rate"] == 100

    km2 = tmp_path / "km2"
    _labels_cli(tiny_corpus, km2, "--features", "model", "--checkpoint", it1 / "checkpoint_last.pt", "--layer", "3")
    meta = json.loads((km2 / "labels.json").read_text())
    assert meta["label_rate"] == 50 and meta["feature_dim"] == 256 and meta["request"]["layer"] == 3
    # One label per encoder frame of the iteration-1 model.
    from fairseq import checkpoint_utils

    (model,), _, _ = checkpoint_utils.load_model_ensemble_and_task([str(it1 / "checkpoint_last.pt")])
    samples = torch.tensor([int(r.split("\t")[1]) for r in (tiny_corpus / "valid.tsv").read_text().splitlines()[1:]])
    assert _label_counts(km2 / "valid.km") == model.num_frames(samples).tolist()
    # Layer-3 features as fairseq's HubertModel computes them, unpadded, match the dump.
    wav = hl._read_wave(hl.audio_files(tiny_corpus / "valid.tsv")[0][0], tiny_corpus / "valid.tsv", 2)
    with torch.no_grad():
        ref, _ = model.eval().extract_features(torch.from_numpy(wav)[None], mask=False, output_layer=3)
    feats, lengths = hl.load_dump(km2 / "feats", "valid", 256)
    assert torch.allclose(torch.from_numpy(np.array(feats[: lengths[0]])), ref[0], atol=1e-4)

    it2 = tmp_path / "hubert2"
    hydra_train(str(SSL), "hubert_iter2", tiny_corpus, it2, f"task.label_dir={km2}")
    assert load_checkpoint(it2 / "checkpoint_last.pt")["cfg"]["task"]["label_rate"] == 50
    ft = tmp_path / "ft"
    hydra_train("examples/ctc", "finetune_w2v", tiny_corpus, ft, f"model.w2v_path={it2 / 'checkpoint_last.pt'}")
    proc = generate(tiny_corpus, ft / "checkpoint_best.pt", "test")
    assert re.search(r"Generate test with beam=1: WER: \d+\.\d+", proc.stdout + proc.stderr)


# ---------------------------------------------------- wav2vec, CPC, vq-wav2vec and fine-tuning
WAV2VEC1 = {  # config: the fine-tuning front-end output
    "cpc": "context",
    "wav2vec": "context",
    "vq_wav2vec_gumbel": "quantized",
    "vq_wav2vec_kmeans": "context",
}


@pytest.mark.parametrize("name", sorted(WAV2VEC1))
def test_wav2vec1_family_pretrains_finetunes_frozen_and_decodes(name, tiny_corpus, tmp_path):
    pre = tmp_path / "pre"
    proc = hydra_train(str(SSL), name, tiny_corpus, pre)
    logged = re.findall(r"num_updates=(\d+)", proc.stdout + proc.stderr)
    assert logged[-1] == "3"
    state = load_checkpoint(pre / "checkpoint_last.pt")
    assert state["cfg"]["model"]["_name"] == "wav2vec"

    ft = tmp_path / "ft"
    hydra_train(str(SSL), "finetune_wav2vec1", tiny_corpus, ft,
                f"model.encoder.frontend_checkpoint={pre / 'checkpoint_last.pt'}",
                f"model.encoder.frontend_output={WAV2VEC1[name]}")
    tuned = load_checkpoint(ft / "checkpoint_last.pt")
    prefix = "w2v_encoder.w2v_model.feature_extractor.wav2vec."
    frontend = {k[len(prefix):]: v for k, v in tuned["model"].items() if k.startswith(prefix)}
    assert frontend and all(torch.equal(v, state["model"][k]) for k, v in frontend.items())  # frozen
    assert not any(k.startswith("wav2vec_predictions") for k in frontend)
    conv = "w2v_encoder.w2v_model.feature_extractor.convs.0.weight"
    assert conv in tuned["model"]
    # The fine-tuned checkpoint carries the front end's config: decoding needs no pre-training file.
    (pre / "checkpoint_last.pt").unlink()
    proc = generate(tiny_corpus, ft / "checkpoint_best.pt", "test")
    assert re.search(r"Generate test with beam=1: WER: \d+\.\d+", proc.stdout + proc.stderr)


def test_wav2vec2_checkpoint_as_wav2vec_frontend_is_refused(tiny_corpus, tmp_path):
    """A wav2vec 2.0 checkpoint given as a wav2vec front end: told to use w2v_path."""
    w2v = tmp_path / "w2v"
    hydra_train("examples/wav2vec2", "pretrain_fbank", tiny_corpus, w2v)
    proc = hydra_train(str(SSL), "finetune_wav2vec1", tiny_corpus, tmp_path / "ft",
                       f"model.encoder.frontend_checkpoint={w2v / 'checkpoint_last.pt'}", check=False)
    assert proc.returncode != 0 and "'sslasr_wav2vec2' checkpoint" in proc.stderr and "w2v_path" in proc.stderr


# ------------------------------------------------------------------------ GPU-size variants
GPU_VARIANTS = {  # config: (its base config, parameters in millions)
    "ssl/gpu/cpc": ("ssl/cpc", (5, 12)),
    "ssl/gpu/wav2vec": ("ssl/wav2vec", (25, 40)),
    "ssl/gpu/vq_wav2vec_gumbel": ("ssl/vq_wav2vec_gumbel", (25, 40)),
    "ssl/gpu/vq_wav2vec_kmeans": ("ssl/vq_wav2vec_kmeans", (25, 40)),
    "ssl/gpu/hubert_iter1": ("ssl/hubert_iter1", (90, 100)),
    "ssl/gpu/hubert_iter2": ("ssl/hubert_iter2", (90, 100)),
    "wav2vec2/gpu/pretrain_fbank": ("wav2vec2/pretrain_fbank", (90, 100)),
}


@pytest.mark.parametrize("variant", sorted(GPU_VARIANTS))
def test_gpu_size_variant_builds_at_paper_size(variant, tiny_corpus, mfcc_labels):
    """The +gpu=... variants, composed over their config as fairseq-hydra-train does, build the
    paper-size model (training them needs a GPU: docs/results/ssl.md says which were run)."""
    from fairseq import tasks
    from fairseq.dataclass.configs import FairseqConfig
    from fairseq.dataclass.initialize import add_defaults
    from omegaconf import OmegaConf

    base, (low, high) = GPU_VARIANTS[variant]
    method, name = base.split("/")
    data = [f"task.data={tiny_corpus}"] + ([f"task.label_dir={mfcc_labels}"] if "hubert" in base else [])
    composed = compose_example(REPO / "examples" / method, name, f"+gpu={name}", *data)
    del composed["hydra"]
    cfg = OmegaConf.merge(OmegaConf.structured(FairseqConfig), composed)
    add_defaults(cfg)
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))
    assert cfg.common.bf16
    model = tasks.setup_task(cfg.task).build_model(cfg.model)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    assert low <= params <= high, f"{variant}: {params:.1f} M parameters"


# ------------------------------------- pre-trained encoders start CSL, joint and slimIPL runs
@pytest.fixture(scope="module")
def w2v_pretrained(tiny_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("w2v")
    hydra_train("examples/wav2vec2", "pretrain_fbank", tiny_corpus, out)
    return out / "checkpoint_last.pt"


def _encoder(state, prefix=""):
    from sslasr_plugin.models.wav2vec2 import ENCODER_PREFIXES

    return {k[len(prefix):]: v for k, v in state["model"].items()
            if k.startswith(prefix) and k[len(prefix):].startswith(ENCODER_PREFIXES)}


def _frame_labels(corpus, out):
    """Random frame labels at the demo encoder's 50 frames/s (log-mel frames, then one stride-2 conv)."""
    out.mkdir()
    rng = np.random.default_rng(0)
    for split in ("unlabeled", "valid"):
        rows = (corpus / f"{split}.tsv").read_text().splitlines()[1:]
        frames = [(((int(r.split("\t")[1]) - 400) // 160 + 1) - 3) // 2 + 1 for r in rows]
        (out / f"{split}.plab").write_text("".join(" ".join(rng.choice(list("ABCD"), n)) + "\n" for n in frames))
    (out / "dict.plab.txt").write_text("".join(f"{c} 1\n" for c in "ABCD"))
    return out


# With the learning rate at 0 the trained model still holds exactly what it started from.
FROZEN = ("optimization.lr=[0.0]",)


def test_pretrained_encoder_starts_csl_joint_and_slimipl(w2v_pretrained, tiny_corpus, tmp_path):
    pretrained = load_checkpoint(w2v_pretrained)
    encoder = _encoder(pretrained)
    assert len(encoder) > 20

    csl = tmp_path / "csl"
    hydra_train("examples/csl", "csl", tiny_corpus, csl, f"task.label_dir={_frame_labels(tiny_corpus, tmp_path / 'pl')}",
                f"model.init_encoder={w2v_pretrained}", *FROZEN)
    got = _encoder(load_checkpoint(csl / "checkpoint_last.pt"))
    assert got.keys() == encoder.keys() and all(torch.equal(got[k], encoder[k]) for k in encoder)

    joint = tmp_path / "joint"
    proc = hydra_train("examples/joint", "joint", tiny_corpus, joint, f"model.w2v_path={w2v_pretrained}", *FROZEN)
    assert re.search(r"unsup_loss=\d", proc.stdout + proc.stderr)  # contrastive updates ran
    state = load_checkpoint(joint / "checkpoint_last.pt")
    prefix = "w2v_encoder.w2v_model."
    kept = {k[len(prefix):]: v for k, v in state["model"].items() if k.startswith(prefix)}
    # Everything the pre-training made, quantizer and projections included, is there unchanged.
    assert kept.keys() == pretrained["model"].keys()
    assert all(torch.equal(kept[k], v) for k, v in pretrained["model"].items())

    slim = tmp_path / "slimipl"
    hydra_train("examples/slimipl", "slimipl", tiny_corpus, slim, f"model.w2v_path={w2v_pretrained}",
                "task.warmup_updates=1", *FROZEN)
    got = _encoder(load_checkpoint(slim / "checkpoint_last.pt"), prefix)
    assert got.keys() == encoder.keys() and all(torch.equal(got[k], encoder[k]) for k in encoder)


def test_init_encoder_refuses_another_architecture(w2v_pretrained, tiny_corpus, tmp_path):
    proc = hydra_train("examples/csl", "csl", tiny_corpus, tmp_path / "csl",
                       f"task.label_dir={_frame_labels(tiny_corpus, tmp_path / 'pl')}",
                       f"model.init_encoder={w2v_pretrained}", "model.encoder_layers=2",
                       "model.encoder_embed_dim=64", check=False)
    assert proc.returncode != 0
    assert "its encoder does not fit this model" in proc.stderr and "post_extract_proj" in proc.stderr
