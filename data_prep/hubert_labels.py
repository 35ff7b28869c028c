"""HuBERT targets: features -> streaming k-means -> one cluster id per frame, for every split.

Iteration 1 clusters MFCCs (100 frames/s), iteration 2 one Transformer layer of the iteration-1
model.  The k-means is trained on --train-split only, and its centroids label every split.
Writes {split}.km, dict.km.txt, labels.json (label_rate to use), kmeans.npy and the feature dump
into --out; resumable, never overwrites without --overwrite (docs/design.md, "HuBERT labels").

    python -m data_prep.hubert_labels --data data/demo --out data/demo_km1 --features mfcc --clusters 100
    python -m data_prep.hubert_labels --data data/demo --out data/demo_km2 \
        --features model --checkpoint exp/hubert1/checkpoint_last.pt --layer 4 --clusters 100
"""
import argparse
import json
import os
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import soundfile as sf
import torch

from sslasr_data.validate import audio_files

SAMPLE_RATE = 16000
MFCC_RATE = 100  # kaldi frames: 25 ms window, 10 ms shift, no padding at the edges


class HubertLabelError(RuntimeError):
    pass


# ----------------------------------------------------------------------------------- features
def mfcc_features(wav: torch.Tensor) -> torch.Tensor:
    """39-dim MFCC + deltas + delta-deltas (kaldi-compatible), (frames, 39), 100 frames/s."""
    import torchaudio

    mfcc = torchaudio.compliance.kaldi.mfcc(wav.view(1, -1), sample_frequency=SAMPLE_RATE, use_energy=False)
    deltas = torchaudio.functional.compute_deltas(mfcc.T)
    delta2 = torchaudio.functional.compute_deltas(deltas)
    return torch.cat([mfcc.T, deltas, delta2]).T.contiguous()


def mfcc_frames(num_samples: int) -> int:
    return max(0, (num_samples - 400) // 160 + 1)


class ModelFeatures:
    """Features of Transformer layer ``layer`` (1 = first) of a HuBERT or wav2vec 2.0 pre-training
    checkpoint (plugin or stock fairseq), without masking or dropout."""

    def __init__(self, checkpoint: str, layer: int, device: str = "cpu"):
        import sslasr_plugin  # noqa: F401  (registers the plugin's models and tasks; safe loader)
        from fairseq import checkpoint_utils

        models, cfg, _ = checkpoint_utils.load_model_ensemble_and_task([checkpoint])
        self.model = models[0].eval().to(device)
        self.device = device
        layers = len(self.model.encoder.layers)
        if not 1 <= layer <= layers:
            raise HubertLabelError(f"--layer {layer}: {checkpoint} has Transformer layers 1..{layers}")
        self.layer = layer
        self.dim = cfg.model.encoder_embed_dim
        # Nominal frames per second (edge effects cancel in the difference).
        self.rate = float(self.num_frames(200 * SAMPLE_RATE) - self.num_frames(100 * SAMPLE_RATE)) / 100

    def num_frames(self, num_samples: int) -> int:
        from sslasr_plugin.models.frontend import conv_output_lengths

        model = self.model
        lengths = torch.tensor([num_samples])
        if hasattr(model, "num_frames"):
            return int(model.num_frames(lengths))
        if hasattr(model, "_get_feat_extract_output_lengths"):
            return int(model._get_feat_extract_output_lengths(lengths))
        convs = [(block[0].out_channels, block[0].kernel_size[0], block[0].stride[0])  # stock HuBERT
                 for block in model.feature_extractor.conv_layers]
        return int(conv_output_lengths(lengths, convs))

    @torch.no_grad()
    def __call__(self, waves: List[np.ndarray]) -> List[torch.Tensor]:
        lengths = torch.tensor([len(w) for w in waves])
        source = torch.zeros(len(waves), int(lengths.max()))
        for i, w in enumerate(waves):
            source[i, : len(w)] = torch.from_numpy(w)
        padding_mask = torch.arange(source.size(1))[None, :] >= lengths[:, None]
        from fairseq.models.hubert.hubert import HubertModel

        source, padding_mask = source.to(self.device), padding_mask.to(self.device)
        if isinstance(self.model, HubertModel):
            x, _ = self.model.extract_features(source, padding_mask=padding_mask, mask=False, output_layer=self.layer)
        else:  # wav2vec 2.0: its `layer` counts from 0
            x = self.model.extract_features(source, padding_mask, mask=False, layer=self.layer - 1)["x"]
        return [x[i, : self.num_frames(int(n))].float().cpu() for i, n in enumerate(lengths)]


def _read_wave(path: Path, tsv: Path, lineno: int) -> np.ndarray:
    try:
        wav, rate = sf.read(str(path), dtype="float32")
    except Exception as e:
        raise HubertLabelError(f"{tsv} line {lineno}: {path} is not readable audio ({e}); re-create the file "
                               "or remove its row") from None
    if rate != SAMPLE_RATE or wav.ndim != 1:
        raise HubertLabelError(f"{tsv} line {lineno}: {path} is {rate} Hz with shape {wav.shape}; expected "
                               f"{SAMPLE_RATE} Hz mono (sox in.wav -r {SAMPLE_RATE} -c 1 out.wav)")
    return wav


def _resume_dump(feat_path: Path, len_path: Path, dim: int) -> int:
    """Rows complete in a partial dump; a torn last row (lengths or features) is cut off."""
    lines = len_path.read_text().split("\n") if len_path.exists() else [""]
    done = len(lines) - 1  # lines ending in a newline
    lengths = [int(n) for n in lines[:done]]
    need = sum(lengths) * dim * 4
    have = feat_path.stat().st_size if feat_path.exists() else 0
    while need > have:  # the lengths file got ahead of the features (killed between the writes)
        done -= 1
        need -= lengths[done] * dim * 4
    len_path.write_text("".join(f"{n}\n" for n in lengths[:done]))
    with open(feat_path, "ab") as f:
        f.truncate(need)
    return done


def dump_features(extractor, dim: int, data: Path, split: str, feat_dir: Path, batch_size: int = 8,
                  progress: bool = True) -> None:
    """{split}.f32 + {split}.len, resumably (see the module doc)."""
    final_feat, final_len = feat_dir / f"{split}.f32", feat_dir / f"{split}.len"
    if final_feat.exists() and final_len.exists():
        return
    feat_path, len_path = feat_dir / f"{split}.f32.partial", feat_dir / f"{split}.len.partial"
    tsv = data / f"{split}.tsv"
    rows = audio_files(tsv)
    done = _resume_dump(feat_path, len_path, dim)
    from tqdm import tqdm

    bar = tqdm(total=len(rows), initial=done, desc=f"features {split}", unit="utt", disable=not progress)
    with open(feat_path, "ab") as feat_f, open(len_path, "a") as len_f:
        for start in range(done, len(rows), batch_size):
            batch = rows[start:start + batch_size]
            waves = [_read_wave(path, tsv, start + i + 2) for i, (path, _) in enumerate(batch)]
            for feats in extractor(waves):
                feat_f.write(feats.numpy().astype(np.float32).tobytes())
                feat_f.flush()
                len_f.write(f"{len(feats)}\n")
                len_f.flush()
            bar.update(len(batch))
    bar.close()
    os.replace(feat_path, final_feat)
    os.replace(len_path, final_len)


def load_dump(feat_dir: Path, split: str, dim: int) -> Tuple[np.ndarray, np.ndarray]:
    """The memory-mapped (frames, dim) features of ``split`` and each row's frame count."""
    lengths = np.loadtxt(feat_dir / f"{split}.len", dtype=np.int64, ndmin=1)
    feats = np.memmap(feat_dir / f"{split}.f32", dtype=np.float32, mode="r").reshape(-1, dim)
    if len(feats) != lengths.sum():
        raise HubertLabelError(f"{feat_dir / split}.f32 holds {len(feats)} frames but {split}.len sums to "
                               f"{lengths.sum()}; delete both and dump again")
    return feats, lengths


# ------------------------------------------------------------------------------------ k-means
def _sq_dists(x: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    return (x * x).sum(1, keepdim=True) - 2 * x @ centers.T + (centers * centers).sum(1)[None, :]


def assign(x: np.ndarray, centers: np.ndarray, chunk: int = 65536) -> Tuple[np.ndarray, float]:
    """Nearest centroid of each row and the summed squared distance."""
    c = torch.from_numpy(np.ascontiguousarray(centers, dtype=np.float32))
    labels, inertia = [], 0.0
    for start in range(0, len(x), chunk):
        d = _sq_dists(torch.from_numpy(np.array(x[start:start + chunk], dtype=np.float32)), c)
        best, idx = d.min(1)
        labels.append(idx.numpy())
        inertia += float(best.clamp(min=0).sum())
    return (np.concatenate(labels) if labels else np.zeros(0, np.int64)), inertia


def kmeans_plus_plus(x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii 2007) on the rows of ``x``."""
    centers = [x[torch.randint(len(x), (1,), generator=gen)].squeeze(0)]
    d2 = _sq_dists(x, centers[0][None]).squeeze(1).clamp(min=0)
    for _ in range(1, k):
        probs = d2 / d2.sum() if d2.sum() > 0 else torch.full_like(d2, 1.0 / len(d2))
        c = x[torch.multinomial(probs, 1, generator=gen)].squeeze(0)
        centers.append(c)
        d2 = torch.minimum(d2, _sq_dists(x, c[None]).squeeze(1).clamp(min=0))
    return torch.stack(centers)


def lloyd(x: torch.Tensor, centers: torch.Tensor, iters: int) -> Tuple[torch.Tensor, float]:
    """``iters`` full k-means iterations on ``x``; the centroids and their inertia."""
    for _ in range(iters):
        idx = _sq_dists(x, centers).argmin(1)
        counts = torch.bincount(idx, minlength=len(centers)).to(x.dtype)
        sums = torch.zeros_like(centers).index_add_(0, idx, x)
        won = counts > 0
        centers = centers.clone()
        centers[won] = sums[won] / counts[won][:, None]
    return centers, float(_sq_dists(x, centers).min(1).values.clamp(min=0).sum())


def minibatch_kmeans(feats: np.ndarray, k: int, steps: int = 200, batch_frames: int = 10000,
                     init_frames: int = 20000, seed: int = 1, n_init: int = 3, reassign_ratio: float = 0.01,
                     progress: bool = True) -> np.ndarray:
    """Mini-batch k-means (Sculley 2010) over the rows of ``feats`` (any array, e.g. a memmap),
    reading ``batch_frames`` random rows per step.

    Start: ``n_init`` k-means++ seedings of a random sample of ``init_frames`` rows, each refined
    by 10 full k-means iterations on that sample; the one of least inertia is kept (one seeding
    can put two centroids in one cluster and one between two, which mini-batch updates do not
    undo).  Then each step moves every centroid towards the mean of the batch rows it wins, by
    (its batch count / its running count): a per-centroid learning rate decaying as 1/count.
    Centroids that win under ``reassign_ratio`` x the mean count (dead clusters) are moved to
    random rows of the batch during the first half of training."""
    n = len(feats)
    if n < k:
        raise HubertLabelError(f"{n} frames cannot make {k} clusters; lower --clusters")
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    init = torch.from_numpy(np.array(feats[np.sort(rng.choice(n, min(n, init_frames), replace=False))],
                                     dtype=np.float32))
    init = init.double()
    centers, _ = min((lloyd(init, kmeans_plus_plus(init, k, gen), 10) for _ in range(n_init)), key=lambda r: r[1])
    counts = torch.zeros(k, dtype=torch.float64)
    from tqdm import tqdm

    for step in tqdm(range(steps), desc=f"k-means ({k} clusters)", disable=not progress):
        rows = np.sort(rng.choice(n, min(n, batch_frames), replace=False))
        x = torch.from_numpy(np.array(feats[rows], dtype=np.float64))
        idx = _sq_dists(x, centers).argmin(1)
        batch_counts = torch.bincount(idx, minlength=k).double()
        sums = torch.zeros_like(centers).index_add_(0, idx, x)
        counts += batch_counts
        won = batch_counts > 0
        rate = (batch_counts[won] / counts[won])[:, None]
        centers[won] += rate * (sums[won] / batch_counts[won][:, None] - centers[won])
        if step < steps // 2:
            dead = counts < reassign_ratio * counts.mean()
            if dead.any():
                pick = torch.from_numpy(rng.choice(len(x), int(dead.sum()), replace=False))
                centers[dead] = x[pick]
                counts[dead] = counts[~dead].min() if (~dead).any() else 0
    return centers.float().numpy()


# ------------------------------------------------------------------------------------- labels
def write_labels(feats: np.ndarray, lengths: np.ndarray, centers: np.ndarray, out: Path,
                 split: str) -> Tuple[np.ndarray, float]:
    """{split}.km (one line of cluster ids per row); returns the labels and the mean squared
    distance per frame."""
    labels, inertia = assign(feats, centers)
    partial = out / f"{split}.km.partial"
    with open(partial, "w") as f:
        start = 0
        for n in lengths:
            f.write(" ".join(map(str, labels[start:start + n])) + "\n")
            start += n
    os.replace(partial, out / f"{split}.km")
    return labels, inertia / max(1, len(labels))


def _request(args) -> dict:
    req = {"data": str(Path(args.data).resolve()), "features": args.features, "clusters": args.clusters,
           "train_split": args.train_split, "seed": args.seed, "steps": args.steps,
           "batch_frames": args.batch_frames}
    if args.features == "model":
        ckpt = Path(args.checkpoint).resolve()
        req.update(checkpoint=str(ckpt), checkpoint_size=ckpt.stat().st_size, layer=args.layer)
    return req


def hubert_labels(args) -> dict:
    data, out = Path(args.data), Path(args.out)
    splits = list(dict.fromkeys([args.train_split, *args.splits]))
    for split in splits:
        if not (data / f"{split}.tsv").is_file():
            raise HubertLabelError(f"{data / split}.tsv not found; --splits names manifests in --data")
    if args.features == "model" and (args.checkpoint is None or args.layer is None):
        raise HubertLabelError("--features model needs --checkpoint (the iteration-1 model) and --layer")
    request = _request(args)
    out.mkdir(parents=True, exist_ok=True)
    run_file = out / "request.json"
    if run_file.exists() and not args.overwrite:
        previous = json.loads(run_file.read_text())
        if previous != request:
            changed = sorted(k for k in set(previous) | set(request) if previous.get(k) != request.get(k))
            raise HubertLabelError(f"{out} holds labels made with other settings ({', '.join(changed)} differ, "
                                   f"see {run_file}); choose another --out or pass --overwrite")
    elif args.overwrite:
        for p in [*out.glob("*.km"), *out.glob("*.partial"), out / "kmeans.npy", out / "labels.json",
                  *(out / "feats").glob("*")]:
            p.unlink()
    run_file.write_text(json.dumps(request, indent=1) + "\n")

    if args.features == "mfcc":
        extractor, dim, rate = (lambda waves: [mfcc_features(torch.from_numpy(w)) for w in waves]), 39, MFCC_RATE
    else:
        extractor = ModelFeatures(args.checkpoint, args.layer, args.device)
        dim, rate = extractor.dim, extractor.rate
    feat_dir = out / "feats"
    feat_dir.mkdir(exist_ok=True)
    for split in splits:
        dump_features(extractor, dim, data, split, feat_dir, args.batch_size, not args.no_progress)

    km_path = out / "kmeans.npy"
    if not km_path.exists():
        train, _ = load_dump(feat_dir, args.train_split, dim)
        centers = minibatch_kmeans(train, args.clusters, args.steps, args.batch_frames, seed=args.seed,
                                   progress=not args.no_progress)
        np.save(out / "kmeans.partial.npy", centers)
        os.replace(out / "kmeans.partial.npy", km_path)
    centers = np.load(km_path, allow_pickle=False)

    (out / "dict.km.txt").write_text("".join(f"{i} 1\n" for i in range(args.clusters)))
    stats = {}
    for split in splits:
        feats, lengths = load_dump(feat_dir, split, dim)
        labels, mse = write_labels(feats, lengths, centers, out, split)
        stats[split] = {"frames": int(lengths.sum()), "mse": mse}
        if split == args.train_split:
            counts = np.bincount(labels, minlength=args.clusters)
            probs = counts / counts.sum()
            stats[split]["used_clusters"] = int((counts > 0).sum())
            stats[split]["perplexity"] = float(np.exp(-(probs[probs > 0] * np.log(probs[probs > 0])).sum()))
    meta = {"label_rate": rate, "feature_dim": dim, "request": request, "splits": stats,
            "kmeans": "trained on " + args.train_split + "; the same centroids label every split"}
    (out / "labels.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="directory with {split}.tsv manifests")
    parser.add_argument("--out", required=True, help="output directory (task.label_dir of the HuBERT run)")
    parser.add_argument("--features", choices=["mfcc", "model"], required=True,
                        help="mfcc: iteration 1; model: a Transformer layer of --checkpoint (iteration 2)")
    parser.add_argument("--checkpoint", help="--features model: the HuBERT (or wav2vec 2.0) pre-training checkpoint")
    parser.add_argument("--layer", type=int, help="--features model: Transformer layer, 1 = the first")
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--train-split", default="unlabeled", help="the split the k-means is learned on")
    parser.add_argument("--splits", nargs="+", default=["unlabeled", "valid"], help="splits to label")
    parser.add_argument("--steps", type=int, default=300, help="mini-batch k-means steps")
    parser.add_argument("--batch-frames", type=int, default=10000, help="frames per k-means step")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8, help="utterances per feature batch")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--overwrite", action="store_true", help="replace what --out holds")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        meta = hubert_labels(args)
    except HubertLabelError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"labels ready in {args.out}: task.label_dir={Path(args.out).resolve()} task.labels=[km] "
          f"task.label_rate={meta['label_rate']:g} (model.label_rate follows the task)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
