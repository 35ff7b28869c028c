"""The self-supervised family (examples/ssl): HuBERT label preparation (features, streaming
k-means, labels, iteration 2), the label-rate check, the wav2vec/CPC/vq-wav2vec front ends, and
tiny real runs of every config through fairseq-hydra-train, fine-tuning and fairseq-generate."""
import json
import re

import numpy as np
import pytest
import torch

from conftest import REPO, generate, hydra_train, run_cli
from data_prep import hubert_labels as hl
from sslasr_plugin.checkpoint import load_checkpoint
from sslasr_plugin.data.validate import DataError, check_frame_labels

SSL = REPO / "examples" / "ssl"


# ------------------------------------------------------------------------ k-means and features
def _blobs(seed=0, per=1000):
    rng = np.random.default_rng(seed)
    means = np.array([[0, 0, 0, 0], [10, 0, 0, 0], [0, 10, 0, 0], [0, 0, 10, 10]], dtype=np.float32)
    x = np.concatenate([m + rng.normal(0, 0.5, (per, 4)).astype(np.float32) for m in means])
    truth = np.repeat(np.arange(len(means)), per)
    order = rng.permutation(len(x))
    return x[order], truth[order], means


class _CountingRows:
    """An array stand-in that records how many rows each read asks for."""

    def __init__(self, x):
        self.x, self.reads = x, []

    def __len__(self):
        return len(self.x)

    def __getitem__(self, rows):
        self.reads.append(len(rows))
        return self.x[rows]


def test_minibatch_kmeans_recovers_separated_clusters_reading_batches_only():
    x, truth, means = _blobs()
    feats = _CountingRows(x)
    centers = hl.minibatch_kmeans(feats, 4, steps=30, batch_frames=500, init_frames=800, seed=3, progress=False)
    # Every true mean has a centroid within 0.1 (noise sd 0.5, ~250 points per cluster and step).
    dist = np.linalg.norm(means[:, None, :] - centers[None, :, :], axis=-1)
    assert dist.min(1).max() < 0.1
    labels, inertia = hl.assign(x, centers)
    for c in range(4):  # each true cluster maps to exactly one centroid
        assert len(set(labels[truth == c])) == 1
    assert inertia / len(x) == pytest.approx(4 * 0.25, rel=0.1)  # 4 dims x variance 0.25
    # Streaming: never more than one batch (or the k-means++ sample) in memory.
    assert max(feats.reads) <= 800 and len(feats.reads) == 31


def test_minibatch_kmeans_deterministic_per_seed_and_revives_dead_clusters():
    x, _, _ = _blobs(seed=1)
    a = hl.minibatch_kmeans(x, 6, steps=20, batch_frames=400, seed=7, progress=False)
    b = hl.minibatch_kmeans(x, 6, steps=20, batch_frames=400, seed=7, progress=False)
    c = hl.minibatch_kmeans(x, 6, steps=20, batch_frames=400, seed=8, progress=False)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    labels, _ = hl.assign(x, a)
    assert len(set(labels)) == 6  # 6 clusters over 4 blobs: none left empty
    with pytest.raises(hl.HubertLabelError, match="cannot make 9 clusters"):
        hl.minibatch_kmeans(x[:8], 9, progress=False)


def test_mfcc_features_are_kaldi_frames_with_deltas():
    wav = torch.randn(16000 + 123)
    feats = hl.mfcc_features(wav)
    assert feats.shape == (hl.mfcc_frames(16123), 39) == (99, 39)
    # The deltas are the deltas of the first 13 columns.
    import torchaudio

    assert torch.allclose(feats[:, 13:26], torchaudio.functional.compute_deltas(feats[:, :13].T).T, atol=1e-5)


def test_check_frame_labels_names_line_and_rate(tmp_path):
    tsv, labels = tmp_path / "train.tsv", tmp_path / "train.km"
    rows = [(2, "a.wav", 16000), (3, "b.wav", 32000)]
    labels.write_text("1 " * 98 + "\n" + "2 " * 199 + "\n")
    check_frame_labels(str(tsv), str(labels), rows, 100, 16000)  # 98 ~ 100, 199 ~ 200
    with pytest.raises(DataError) as err:  # the same labels read at 50 Hz
        check_frame_labels(str(tsv), str(labels), rows, 50, 16000)
    msg = str(err.value)
    assert "train.km line 1" in msg and "98 labels" in msg and "98.0 labels/s" in msg and "task.label_rate=50" in msg
    labels.write_text("1 " * 98 + "\n" + "2 " * 190 + "\n")
    with pytest.raises(DataError, match="line 2: 190 labels for b.wav"):
        check_frame_labels(str(tsv), str(labels), rows, 100, 16000)


def test_feature_dump_resumes_after_a_torn_row(tiny_corpus, tmp_path):
    def mfcc(waves):
        return [hl.mfcc_features(torch.from_numpy(w)) for w in waves]

    whole, part = tmp_path / "whole", tmp_path / "part"
    whole.mkdir(), part.mkdir()
    hl.dump_features(mfcc, 39, tiny_corpus, "valid", whole, batch_size=3, progress=False)
    # Interrupted after 4 rows, killed between writing a 5th row's features and its length,
    # with half of the 6th row's features written.
    reference = (whole / "valid.f32").read_bytes()
    lengths = [int(n) for n in (whole / "valid.len").read_text().split()]
    cut = sum(lengths[:5]) * 39 * 4 + 100
    (part / "valid.f32.partial").write_bytes(reference[:cut])
    (part / "valid.len.partial").write_text("".join(f"{n}\n" for n in lengths[:4]) + "12")  # torn line
    hl.dump_features(mfcc, 39, tiny_corpus, "valid", part, batch_size=3, progress=False)
    assert (part / "valid.f32").read_bytes() == reference
    assert (part / "valid.len").read_text() == (whole / "valid.len").read_text()
    assert not list(part.glob("*.partial"))


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
    wav = hl._read_wave(hl.read_manifest(tiny_corpus / "valid.tsv")[0][0], tiny_corpus / "valid.tsv", 2)
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


def test_sslasr_hubert_fbank_frames_labels_and_padding():
    from fairseq.data import Dictionary
    from fairseq.tasks.hubert_pretraining import HubertPretrainingConfig

    from sslasr_plugin.models.hubert import SslAsrHubertConfig, SslAsrHubertModel

    d = Dictionary()
    for i in range(5):
        d.add_symbol(str(i))
    cfg = SslAsrHubertConfig(label_rate=100, frontend="fbank", conv_feature_layers="[(32, 3, 2)]", final_dim=8,
                             encoder_layers=1, encoder_embed_dim=32, encoder_ffn_embed_dim=64,
                             encoder_attention_heads=2, conv_pos=16, conv_pos_groups=4)
    model = SslAsrHubertModel(cfg, HubertPretrainingConfig(label_rate=100), [d]).eval()
    assert model.feat2tar_ratio == 2.0  # 320 samples per frame, 160 per MFCC label
    waves = torch.randn(2, 16000)
    lengths = torch.tensor([16000, 9000])
    pad = torch.arange(16000)[None] >= lengths[:, None]
    with torch.no_grad():
        _, mask = model.extract_features(waves, padding_mask=pad, mask=False)
    assert (~mask).sum(1).tolist() == model.num_frames(lengths).tolist() == [48, 26]
    with torch.no_grad():
        alone, _ = model.extract_features(waves[1:, :9000], mask=False)
        batched, _ = model.extract_features(waves, padding_mask=pad, mask=False)
    assert alone.shape[1] == 26 and torch.allclose(alone[0], batched[1, :26], atol=1e-4)


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
    for subset in ("test", "test_ood"):
        proc = generate(tiny_corpus, ft / "checkpoint_best.pt", subset)
        assert re.search(rf"Generate {subset} with beam=1: WER: \d+\.\d+", proc.stdout + proc.stderr)


def test_wav2vec_frontend_frames_and_bad_checkpoints(tiny_corpus, tmp_path):
    from fairseq.models.wav2vec.wav2vec import Wav2VecConfig, Wav2VecModel
    from omegaconf import OmegaConf

    from sslasr_plugin.models.frontend import Wav2VecFrontend, wav2vec_output_dim

    layers = [(16, 10, 5), (16, 8, 4), (16, 4, 2), (16, 4, 2), (16, 4, 2)]
    cfg = OmegaConf.merge(OmegaConf.structured(Wav2VecConfig), {
        "conv_feature_layers": str(layers), "aggregator": "gru", "gru_dim": 24, "infonce": True})
    frontend = Wav2VecFrontend(Wav2VecModel(cfg), [(32, 3, 2)], "context", layers, wav2vec_output_dim(cfg, "context"))
    for n in (3200, 16000, 16123):
        raw = frontend.wav2vec_output(torch.randn(1, n))
        assert raw.shape[1:] == (24, int(frontend.num_frames(torch.tensor(n))))
    assert frontend(torch.randn(1, 16000)).shape[1] == 32
    assert not any(p.requires_grad for p in frontend.wav2vec.parameters())
    with pytest.raises(ValueError, match="needs a vq-wav2vec checkpoint"):
        Wav2VecFrontend(Wav2VecModel(cfg), [(32, 3, 2)], "quantized", layers, 24)

    # A wav2vec 2.0 checkpoint given as a wav2vec front end: told to use w2v_path.
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
    """The +gpu=... variants, merged over their config as hydra does, build the paper-size model
    (training them needs a GPU: docs/RESULTS.md says which were run)."""
    from fairseq import tasks
    from fairseq.dataclass.configs import FairseqConfig
    from fairseq.dataclass.initialize import add_defaults
    from omegaconf import OmegaConf

    base, (low, high) = GPU_VARIANTS[variant]
    examples = REPO / "examples"
    primary = {k: v for k, v in OmegaConf.load(examples / f"{base}.yaml").items() if k != "hydra"}
    data = [f"task.data={tiny_corpus}"] + ([f"task.label_dir={mfcc_labels}"] if "hubert" in base else [])
    cfg = OmegaConf.merge(OmegaConf.structured(FairseqConfig), primary, OmegaConf.load(examples / f"{variant}.yaml"),
                          OmegaConf.from_dotlist(data))
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
