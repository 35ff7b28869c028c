"""data_prep.hubert_labels: streaming k-means, MFCC features, a resumable feature dump."""
import numpy as np
import pytest
import torch

from data_prep import hubert_labels as hl


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
