"""Speed perturbation: lengths, pitch and identity of the resampled audio, the per-(seed, epoch,
index) draw, stretched frame labels, and batches that stay within max_tokens."""
import math

import numpy as np
import pytest
import torch
import torchaudio
from fairseq.data import FairseqDataset

from sslasr_data.validate import frame_label_problem
from sslasr_plugin.data.speed_perturb import (SpeedPerturbDataset, perturbed_length, speed_perturbed,
                                              stretch_frame_labels)

RATE = 16000


class _Audio(FairseqDataset):
    """What the wrapper needs of fairseq's audio datasets: sizes, rate, crop size, items; with
    ``label_rates``, HubertDataset's frame labels (one per 20 ms, label = frame index // 10)."""

    def __init__(self, sizes, max_sample_size=10**9, label_rates=None):
        self.sizes = np.asarray(sizes)
        self.sample_rate = RATE
        self.max_sample_size = max_sample_size
        if label_rates is not None:
            self.label_rates = label_rates

    def __len__(self):
        return len(self.sizes)

    def __getitem__(self, index):
        n = int(self.sizes[index])
        item = {"id": index, "source": torch.sin(2 * math.pi * 440 * torch.arange(n) / RATE)}
        if hasattr(self, "label_rates"):
            item["label_list"] = [torch.arange(n * 50 // RATE) // 10, torch.tensor([7, 8, 9])]
        return item


def _peak_hz(wave):
    spectrum = torch.fft.rfft(wave).abs()
    return float(spectrum.argmax()) * RATE / len(wave)


@pytest.mark.parametrize("factor,samples,pitch", [(1.1, 14546, 484.0), (0.9, 17778, 396.0)])
def test_factor_changes_length_and_pitch_as_torchaudio_speed(factor, samples, pitch):
    # 16000 samples at 1.1: resampled 11 -> 10, ceil(16000 * 10 / 11) = 14546; at 0.9, ceil(16000 * 10 / 9) = 17778.
    ds = SpeedPerturbDataset(_Audio([16000]), [factor], seed=1)
    out = ds[0]["source"]
    assert len(out) == samples == ds.sizes[0] == ds.num_tokens(0)
    reference, _ = torchaudio.functional.speed(_Audio([16000])[0]["source"], RATE, factor)
    assert torch.allclose(out, reference, atol=1e-5)
    assert abs(_peak_hz(out) - pitch) < 2  # a 440 Hz tone sped up by the factor


def test_factor_one_is_identity():
    audio = _Audio([12345, 20000])
    assert speed_perturbed(audio, [1.0], seed=1) is audio and speed_perturbed(audio, [], seed=1) is audio
    ds = SpeedPerturbDataset(audio, [1.0, 1.1], seed=1)
    unchanged = 0
    for epoch in range(1, 10):
        ds.set_epoch(epoch)
        for i in (0, 1):
            if ds.factor(i) == 1:
                assert torch.equal(ds[i]["source"], audio[i]["source"]) and ds.sizes[i] == audio.sizes[i]
                unchanged += 1
    assert 0 < unchanged < 18


@pytest.mark.parametrize("factor", [0.85, 0.9, 0.95, 1.05, 1.1, 1.15])
def test_predicted_sizes_are_the_resampled_lengths(factor):
    sizes = [1, 399, 16000, 16001, 53330, 63459]
    ds = SpeedPerturbDataset(_Audio(sizes), [factor], seed=1)
    assert [len(ds[i]["source"]) for i in range(len(sizes))] == ds.sizes.tolist()
    assert ds.sizes.tolist() == [perturbed_length(n, factor, RATE) for n in sizes]


def test_draw_depends_on_seed_epoch_and_index_only():
    audio = _Audio(np.full(200, 16000))
    a, b = (SpeedPerturbDataset(audio, [0.9, 1.0, 1.1], seed=7) for _ in range(2))
    epoch1 = a.choice.copy()
    assert np.array_equal(epoch1, b.choice) and set(epoch1) == {0, 1, 2}
    a.set_epoch(2)
    assert not np.array_equal(a.choice, epoch1)  # a new draw every epoch
    a.set_epoch(1)
    assert np.array_equal(a.choice, epoch1)  # a resumed epoch draws the same
    assert not np.array_equal(SpeedPerturbDataset(audio, [0.9, 1.0, 1.1], seed=8).choice, epoch1)


def test_frame_labels_are_stretched_in_order_to_fit_the_audio():
    ds = SpeedPerturbDataset(_Audio([48000], label_rates=[50.0, -1.0]), [0.9], seed=1)
    item = ds[0]
    labels, sequence = item["label_list"]
    # 48000 samples, 150 labels (15 per run); at 0.9: 53334 samples, 150 + round(5334 * 50 / 16000) = 167 labels.
    assert len(item["source"]) == 53334 and len(labels) == 167
    assert frame_label_problem(len(labels), "x.wav", 53334, 2, "train.tsv", 50, RATE) is None
    runs = torch.unique_consecutive(labels, return_counts=True)
    assert runs[0].tolist() == list(range(15)) and set(runs[1].tolist()) <= {11, 12}
    assert sequence.tolist() == [7, 8, 9]  # sequence labels (rate -1) are left alone


def _fbank_frames(samples):
    """Frames of the demo's front end: 25 ms / 10 ms log-mels, then a 3-tap stride-2 conv."""
    return ((samples - 400) // 160 - 2) // 2 + 1


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_stretched_labels_keep_fitting_their_audio_and_its_frames(factor):
    for samples in range(16000, 80000, 997):
        labels = torch.arange(_fbank_frames(samples))  # a teacher's labels: one per encoder frame
        new_samples = perturbed_length(samples, factor, RATE)
        out = stretch_frame_labels(labels, samples, new_samples, 50, RATE)
        assert frame_label_problem(len(out), "x.wav", new_samples, 2, "train.tsv", 50, RATE) is None
        assert abs(len(out) - _fbank_frames(new_samples)) <= 1  # the CSL criterion allows 2
        assert torch.all(out[1:] >= out[:-1]) and out[0] == 0 and out[-1] == len(labels) - 1


def test_batches_follow_the_epochs_sizes_within_max_tokens():
    rng = np.random.default_rng(0)
    sizes = rng.integers(16000, 64000, size=300)
    ds = SpeedPerturbDataset(_Audio(sizes, max_sample_size=60000), [0.9, 1.0, 1.1], seed=3)
    for epoch in (1, 2):
        ds.set_epoch(epoch)
        batches = ds.batch_by_size(ds.ordered_indices(), max_tokens=400000)
        assert sorted(i for b in batches for i in b) == list(range(300))
        crop = np.minimum(ds.sizes, 60000)
        assert all(crop[b].max() * len(b) <= 400000 for b in batches)
        assert crop.max() == 60000 and ds.sizes.max() > 64000  # 0.9 stretches past the unperturbed maximum
    assert not ds.can_reuse_epoch_itr_across_epochs


def test_bad_factors_are_refused_with_the_option_name():
    with pytest.raises(ValueError, match=r"task.speed_perturb=\[0.9, 0.0\]: factors must be positive"):
        SpeedPerturbDataset(_Audio([16000]), [0.9, 0.0], seed=1)
    with pytest.raises(TypeError, match="task.speed_perturb: list reads no audio"):
        SpeedPerturbDataset([1, 2], [0.9], seed=1)


def test_transcribed_audio_is_not_slowed_past_the_crop_size():
    """Under a transcript (a sequence label), an utterance that fits max_sample_size but would not
    once slowed down keeps its speed: the collater would crop audio whose transcript stays whole.
    Frame labels are cropped with their audio, so those utterances are perturbed as drawn."""
    sizes, crop = [16000, 15000, 17500], 17000  # at 0.9: 17778 (over), 16667 (fits), 19445 (over already)
    transcribed = SpeedPerturbDataset(_Audio(sizes, crop, label_rates=[50.0, -1.0]), [0.9], seed=1)
    assert [transcribed.factor(i) for i in range(3)] == [1.0, 0.9, 0.9]
    assert transcribed.sizes.tolist() == [16000, 16667, 19445]
    assert len(transcribed[0]["source"]) == 16000 and len(transcribed[1]["source"]) == 16667
    frames = SpeedPerturbDataset(_Audio(sizes, crop, label_rates=[50.0]), [0.9], seed=1)
    assert [frames.factor(i) for i in range(3)] == [0.9, 0.9, 0.9]
    assert frames.num_tokens(0) == crop
