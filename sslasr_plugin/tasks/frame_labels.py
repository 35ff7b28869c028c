"""Audio with one pseudo-label per encoder frame: fairseq's hubert_pretraining data pipeline
(label files {label_dir}/{split}.{label} + dict.{label}.txt, consistent audio/label cropping),
plus optional label-aware batching for CSL.
"""
import logging
from dataclasses import dataclass, field

import numpy as np
from fairseq.tasks import register_task
from fairseq.tasks.hubert_pretraining import HubertPretrainingConfig, HubertPretrainingTask
from omegaconf import II

from ..data.label_aware_batching import LabelSets, audio_share, label_aware_batches, pair_coverage
from sslasr_data.validate import check_audio_exists, check_frame_labels, check_labels, read_manifest
from ..models.wav2vec2 import load_encoder_weights
from .batching import iterator_options, sampled_iterator
from .nonfinite import NONFINITE_PATIENCE_HELP, NonFiniteGuard
from .speed_perturb import SpeedPerturbConfig, SpeedPerturbTask

logger = logging.getLogger(__name__)


@dataclass
class FrameLabelsConfig(HubertPretrainingConfig, SpeedPerturbConfig):
    label_aware_batching: bool = field(
        default=False,
        metadata={"help": "build batches with LAB (rarest label first, labels in pairs) instead of by length"},
    )
    label_aware_buckets: int = field(
        default=1,
        metadata={"help": "LAB within this many length buckets of equal utterance counts: batches of similar "
                  "lengths pad less; a label pairs only with utterances of its bucket (1: the paper's LAB)"},
    )
    nonfinite_patience: int = field(default=20, metadata={"help": NONFINITE_PATIENCE_HELP})
    train_subset: str = II("dataset.train_subset")


@register_task("sslasr_frame_labels", dataclass=FrameLabelsConfig)
class FrameLabelsTask(NonFiniteGuard, SpeedPerturbTask, HubertPretrainingTask):
    cfg: FrameLabelsConfig

    def build_model(self, cfg, from_checkpoint=False):
        model = super().build_model(cfg, from_checkpoint)
        if not from_checkpoint and getattr(cfg, "init_encoder", None):  # a new run, not a reload
            n = load_encoder_weights(model, cfg.init_encoder)
            logger.info(f"encoder initialized from {cfg.init_encoder} ({n} tensors)")
        return model

    def load_dataset(self, split: str, **kwargs):
        """fairseq's HuBERT dataset, after checking every label file line by line against the
        manifest: line count, dictionary, and (frame labels) one label per frame at label_rate."""
        tsv = f"{self.cfg.data}/{split}.tsv"
        root, rows = read_manifest(tsv)
        check_audio_exists(tsv, root, rows)
        for label, dictionary in zip(self.cfg.labels, self.dictionaries or [None] * len(self.cfg.labels)):
            path = f"{self.get_label_dir()}/{split}.{label}"
            check_labels(tsv, path, len(rows), dictionary)
            if self.cfg.label_rate > 0:
                check_frame_labels(tsv, path, rows, self.cfg.label_rate, self.cfg.sample_rate)
        super().load_dataset(split, **kwargs)
        if split == self.cfg.train_subset:
            self.datasets[split] = self.speed_perturbed(self.datasets[split])

    def utterance_labels(self, dataset) -> LabelSets:
        """The distinct labels of every utterance in the first label stream (read once per dataset)."""
        if not hasattr(dataset, "_sslasr_label_sets"):
            dataset._sslasr_label_sets = LabelSets([dataset.get_label(i, 0).numpy() for i in range(len(dataset))])
        return dataset._sslasr_label_sets

    def get_batch_iterator(self, dataset, *args, **kwargs):
        if not self.cfg.label_aware_batching:
            return super().get_batch_iterator(dataset, *args, **kwargs)
        opts = iterator_options(self, dataset, *args, **kwargs)
        dataset.set_epoch(opts["epoch"])  # the batches of an epoch follow its sizes (speed perturbation)
        utt_labels = self.utterance_labels(dataset)
        max_tokens = opts["max_tokens"] or np.iinfo(np.int64).max

        def batches(ds, ep):
            # Audio longer than max_sample_size is cropped by the dataset: batch by the cropped size.
            sizes = np.minimum(ds.sizes, ds.max_sample_size)
            out = label_aware_batches(utt_labels, sizes, max_tokens, opts["seed"], ep, opts["max_sentences"],
                                      buckets=self.cfg.label_aware_buckets)
            logger.info(f"label-aware batching, epoch {ep}: {len(out)} batches, "
                        f"{pair_coverage(out, utt_labels):.3f} of batch labels held by >= 2 utterances, "
                        f"{audio_share(out, sizes):.3f} of the batched samples audio (the rest padding)")
            return out

        return sampled_iterator(dataset, batches, opts, skip_remainder_batch=opts["skip_remainder_batch"])
