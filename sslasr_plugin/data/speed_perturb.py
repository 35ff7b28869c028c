"""Speed perturbation of training audio (Ko et al. 2015), the Kaldi / ESPnet / icefall recipe:
every epoch each utterance is resampled by a factor drawn from ``factors`` (usually 0.9, 1.0,
1.1).  The draw is a function of (seed, epoch, index) only, so a run and its resumption, and
every rank and data-loader worker, see the same audio.

Resampling from factor x rate to rate is ``torchaudio.functional.speed``'s definition; it runs
through torchaudio's ``Resample``, one per factor (its kernel built once).  Frame labels
(fairseq's HubertDataset: ``label_list`` at ``label_rates``) are stretched with the audio, so
they still fit it at their label rate.  Sizes follow the epoch's factors and the batches are
rebuilt every epoch, so a batch holds at most max_tokens samples of perturbed audio.
"""
import logging
import math
from typing import Sequence, Tuple

import numpy as np
import torch
from fairseq.data import AddTargetDataset, BaseWrapperDataset, FairseqDataset
from torchaudio.transforms import Resample

logger = logging.getLogger(__name__)

OPTION = "task.speed_perturb"


def resampling_rates(factor: float, sample_rate: int) -> Tuple[int, int]:
    """(from, to) rates, reduced, that speed audio up by ``factor``: 1.1 at 16 kHz is (11, 10).
    The rate is rounded, not truncated as torchaudio.functional.speed does (1.15 x 16000 is
    18399.99...: 18399 Hz would need a kernel of 16000 phases)."""
    source = round(factor * sample_rate)
    gcd = math.gcd(source, sample_rate)
    return source // gcd, sample_rate // gcd


def perturbed_length(samples, factor: float, sample_rate: int):
    """Samples (an int or an integer array) after speed perturbation by ``factor``:
    torchaudio's resampled length, ceil(samples x to / from)."""
    source, target = resampling_rates(factor, sample_rate)
    return -(-samples * target // source)


def stretch_frame_labels(labels: torch.Tensor, samples: int, new_samples: int, label_rate: float,
                         sample_rate: int) -> torch.Tensor:
    """Frame labels of audio stretched from ``samples`` to ``new_samples``.  The count changes by
    the frames the audio gained or lost at ``label_rate`` (rounded), so the labels keep their
    offset from the audio's frame count, to half a frame; each new frame takes the label at its
    relative position (order kept, runs stretched)."""
    if len(labels) == 0:
        return labels
    count = max(1, len(labels) + round((new_samples - samples) * label_rate / sample_rate))
    positions = ((torch.arange(count, dtype=torch.float64) + 0.5) * (len(labels) / count)).long()
    return labels[positions]


def _layers(dataset):
    """``dataset`` and the datasets it wraps (``.dataset``), outermost first."""
    while dataset is not None:
        yield dataset
        dataset = getattr(dataset, "dataset", None)


def audio_reader(dataset):
    """The fairseq dataset that reads the audio (FileAudioDataset, HubertDataset) under wrappers
    such as AddTargetDataset."""
    for inner in _layers(dataset):
        if hasattr(inner, "sample_rate") and hasattr(inner, "max_sample_size"):
            return inner
    raise TypeError(f"{OPTION}: {type(dataset).__name__} reads no audio through a fairseq audio dataset "
                    "(FileAudioDataset, HubertDataset); speed perturbation cannot be applied to it")


def keeps_sequence_labels(dataset, label_rates: Sequence[float]) -> bool:
    """Whether ``dataset`` attaches labels that do not follow the audio frame by frame (transcripts:
    AddTargetDataset, or a HubertDataset label at rate -1): audio cropped under them loses words
    its labels still hold."""
    return any(isinstance(inner, AddTargetDataset) for inner in _layers(dataset)) or any(r <= 0 for r in label_rates)


class SpeedPerturbDataset(BaseWrapperDataset):
    """``dataset`` with each utterance speed-perturbed by its factor of the current epoch.

    ``sizes`` are the epoch's perturbed lengths; ``num_tokens`` is that length cropped to the
    audio dataset's ``max_sample_size``, as its collater crops; batches are rebuilt every epoch
    (``can_reuse_epoch_itr_across_epochs`` is false).  Under transcripts, an utterance that fits
    ``max_sample_size`` but would not once slowed down keeps its speed that epoch (the collater
    would crop audio whose transcript stays whole).  ``get_label`` gives the stored, unstretched
    labels."""

    def __init__(self, dataset, factors: Sequence[float], seed: int, epoch: int = 1):
        super().__init__(dataset)
        if not factors or any(not f > 0 for f in factors):
            raise ValueError(f"{OPTION}={list(factors)}: factors must be positive numbers, e.g. [0.9,1.0,1.1]")
        reader = audio_reader(dataset)
        if getattr(reader, "num_buckets", 0) > 0:
            raise ValueError(f"{OPTION} cannot be used with task.num_batch_buckets={reader.num_buckets}: the buckets' "
                             "padded sizes are fixed before the audio is perturbed; set task.num_batch_buckets=0")
        if getattr(reader, "is_compute_mask", False):
            raise ValueError(f"{OPTION} cannot be used with task.precompute_mask_config: the masks are computed for "
                             "the unperturbed length; remove one of the two")
        self.factors = [float(f) for f in factors]
        self.seed = seed
        self.sample_rate = int(reader.sample_rate)
        self.crop = reader.max_sample_size
        self.label_rates = list(getattr(reader, "label_rates", []))
        self.transcripts = keeps_sequence_labels(dataset, self.label_rates)
        self.raw_sizes = np.asarray(dataset.sizes, dtype=np.int64)
        self.resamplers = {f: Resample(*resampling_rates(f, self.sample_rate)) for f in set(self.factors) if f != 1}
        self.epoch = None
        self.set_epoch(epoch)

    def set_epoch(self, epoch):
        super().set_epoch(epoch)
        if epoch == self.epoch:
            return
        self.epoch = epoch
        self.choice = np.random.default_rng([self.seed, epoch]).integers(len(self.factors), size=len(self))
        self._factor = np.asarray(self.factors, dtype=np.float64)[self.choice]
        self._sizes = self.raw_sizes.copy()
        for k, factor in enumerate(self.factors):
            drawn = self.choice == k
            self._sizes[drawn] = perturbed_length(self.raw_sizes[drawn], factor, self.sample_rate)
        kept = ""
        if self.transcripts:
            over = (self._sizes > self.crop) & (self.raw_sizes <= self.crop)
            self._factor[over], self._sizes[over] = 1.0, self.raw_sizes[over]
            kept = f"; {int(over.sum())} kept at 1 (slowed down they would pass task.max_sample_size)" if over.any() else ""
        counts = ", ".join(f"{f:g}: {int(np.sum(self.choice == k))}" for k, f in enumerate(self.factors))
        logger.info(f"speed perturbation, epoch {epoch}: utterances per factor {counts}{kept}")

    def factor(self, index: int) -> float:
        return float(self._factor[index])

    def __getitem__(self, index):
        item = self.dataset[index]
        factor = self.factor(index)
        if factor == 1:
            return item
        samples = len(item["source"])
        item["source"] = self.resamplers[factor](item["source"])
        if "label_list" in item:
            item["label_list"] = [
                stretch_frame_labels(labels, samples, len(item["source"]), rate, self.sample_rate) if rate > 0
                else labels  # sequence labels (label rate -1) do not follow the audio's length
                for labels, rate in zip(item["label_list"], self.label_rates)
            ]
        return item

    @property
    def sizes(self):
        return self._sizes

    @property
    def max_sample_size(self):
        return self.crop

    def num_tokens_vec(self, indices):
        return np.minimum(self._sizes[indices], self.crop)

    def num_tokens(self, index):
        return int(min(self._sizes[index], self.crop))

    def size(self, index):
        return self.num_tokens(index)

    def ordered_indices(self):
        """Longest first (by the epoch's perturbed length), ties in random order, as fairseq's
        audio datasets order their indices."""
        order = np.random.permutation(len(self))
        return order[np.argsort(-self.num_tokens_vec(order), kind="stable")]

    def batch_by_size(self, indices, max_tokens=None, max_sentences=None, required_batch_size_multiple=1):
        """fairseq's batching by this dataset's (perturbed) sizes; the wrapper's would use the
        wrapped dataset's."""
        return FairseqDataset.batch_by_size(self, indices, max_tokens, max_sentences, required_batch_size_multiple)

    @property
    def can_reuse_epoch_itr_across_epochs(self):
        return False

    def get_label(self, *args, **kwargs):
        return self.dataset.get_label(*args, **kwargs)


def speed_perturbed(dataset, factors: Sequence[float], seed: int):
    """``dataset`` speed-perturbed by ``factors``; unchanged when no factor differs from 1."""
    if all(f == 1 for f in factors):
        return dataset
    return SpeedPerturbDataset(dataset, factors, seed)
