"""Joint masked CPC + CTC (Talnikar et al. 2021): one run alternating unsupervised and
supervised updates of one model, each with its own optimizer state.

The training split becomes two streams: labeled utterances (CTC) and the audio of
``unlabeled_subsets`` (plus, by default, the labeled audio) for the masked contrastive
loss.  ``data.alternating_batches`` lays the batches out update by update, so every update
(all its ``update_freq`` micro-batches, on every rank) holds one kind of batch; the batch's
``mode`` selects the loss (``sslasr_joint_cpc_ctc``) and the moments that ``optimizer_step``
updates (``sslasr_dual_adam``).  Validation and decoding are plain CTC, as ``sslasr_audio_ctc``.

    fairseq-hydra-train --config-dir examples/joint --config-name joint \
        common.user_dir=sslasr_plugin task.data=$PWD/data/demo checkpoint.save_dir=$PWD/exp/joint
"""
import logging
from dataclasses import dataclass, field
from typing import List

from fairseq.data import ConcatDataset, data_utils, iterators
from fairseq.optim.amp_optimizer import AMPOptimizer
from fairseq.tasks import register_task
from fairseq.tasks.audio_pretraining import AudioPretrainingTask
from omegaconf import II, OmegaConf

from ..data.alternating_batches import SUP, UNSUP, Schedule, epoch_batches
from ..data.two_stream_dataset import TwoStreamDataset
from ..data.validate import validate_split
from ..optim.dual_adam import DualAdam
from .audio_ctc import AudioCtcConfig, AudioCtcTask

logger = logging.getLogger(__name__)


@dataclass
class TwoStreamConfig(AudioCtcConfig):
    """Options of tasks that alternate updates on labeled and unlabeled audio."""
    unlabeled_subsets: str = field(
        default="unlabeled", metadata={"help": "comma-separated manifests whose audio feeds unsupervised updates"}
    )
    unsup_on_labeled: bool = field(
        default=True,
        metadata={"help": "unsupervised updates also see the labeled training audio (the paper: LS-960 incl. "
                  "the labeled train-clean-100)"},
    )
    unsup_updates: int = field(default=1, metadata={"help": "unsupervised updates per cycle (paper: 1; ablation 5)"})
    sup_updates: int = field(default=1, metadata={"help": "supervised (CTC) updates per cycle (paper: 1)"})
    update_freq: List[int] = II("optimization.update_freq")


@dataclass
class JointConfig(TwoStreamConfig):
    pretrain_updates: int = field(
        default=0,
        metadata={"help": "unsupervised-only updates before alternation starts (two-stage baseline: all "
                  "pre-training, with unsup_updates=0 after it)"},
    )


@register_task("sslasr_joint", dataclass=JointConfig)
class JointTask(AudioCtcTask):
    cfg: JointConfig

    def __init__(self, cfg: JointConfig):
        super().__init__(cfg)
        self.schedule = self.build_schedule(cfg)
        self._step_mode = (None, None)  # (update_num, mode) of the update being accumulated
        self._warned_drift = False

    @staticmethod
    def build_schedule(cfg: JointConfig) -> Schedule:
        return Schedule(cfg.pretrain_updates, cfg.unsup_updates, cfg.sup_updates)

    def unlabeled_dataset(self, split: str, check: bool = True):
        """``split`` as unlabeled audio, built by fairseq's audio_pretraining (random crops to the
        batch's shortest utterance, no padding)."""
        if check and self.cfg.check_data:
            validate_split(self.cfg.data, split, labels=None, sample_rate=self.cfg.sample_rate)
        audio_cfg = OmegaConf.create({
            "labels": None, "enable_padding": False, "normalize": self.cfg.normalize, "multi_corpus_keys": None,
            "binarized_dataset": False, "precompute_mask_config": None, "sample_rate": self.cfg.sample_rate,
        })
        AudioPretrainingTask.load_dataset(self, split, audio_cfg)
        return self.datasets.pop(split)

    def load_dataset(self, split: str, task_cfg: TwoStreamConfig = None, **kwargs):
        if split != self.cfg.train_subset:
            return super().load_dataset(split, task_cfg, **kwargs)
        names = [s.strip() for s in self.cfg.unlabeled_subsets.split(",") if s.strip()]
        unsup = [self.unlabeled_dataset(s) for s in names]
        if self.cfg.unsup_on_labeled:
            unsup.append(self.unlabeled_dataset(split, check=False))  # checked below, with its labels
        if not unsup and (self.schedule.unsup_updates or
                          (self.schedule.pretrain_updates and self.schedule.warmup == UNSUP)):
            raise ValueError("unsupervised updates are scheduled but no audio is given for them: set "
                             "task.unlabeled_subsets or task.unsup_on_labeled=true")
        super().load_dataset(split, task_cfg, **kwargs)
        unsup = unsup[0] if len(unsup) == 1 else ConcatDataset(unsup) if unsup else None
        self.datasets[split] = TwoStreamDataset(self.datasets[split], unsup)
        logger.info(f"{split}: {len(self.datasets[split].streams[SUP])} labeled utterances, "
                    f"{len(self.datasets[split].streams[UNSUP])} "
                    f"unlabeled ({', '.join(names + ([split] if self.cfg.unsup_on_labeled else []))}); "
                    f"schedule {self.schedule}")

    def get_batch_iterator(self, dataset, max_tokens=None, max_sentences=None, max_positions=None,
                           ignore_invalid_inputs=False, required_batch_size_multiple=1, seed=1, num_shards=1,
                           shard_id=0, num_workers=0, epoch=1, data_buffer_size=0, disable_iterator_cache=False,
                           skip_remainder_batch=False, grouped_shuffling=False, update_epoch_batch_itr=False):
        if not isinstance(dataset, TwoStreamDataset):
            return super().get_batch_iterator(
                dataset, max_tokens, max_sentences, max_positions, ignore_invalid_inputs,
                required_batch_size_multiple, seed, num_shards, shard_id, num_workers, epoch, data_buffer_size,
                disable_iterator_cache, skip_remainder_batch, grouped_shuffling, update_epoch_batch_itr,
            )
        batches = {}
        with data_utils.numpy_seed(seed):
            for mode, stream in dataset.streams.items():
                local = stream.batch_by_size(stream.ordered_indices(), max_tokens, max_sentences,
                                             required_batch_size_multiple) if len(stream) else []
                batches[mode] = [dataset.stream_indices(mode, b).tolist() for b in local]
        update_freq = list(self.cfg.update_freq)

        def alternating(ds, ep):
            freq = update_freq[min(ep, len(update_freq)) - 1]
            return epoch_batches(self.schedule, batches, ep, seed, num_shards * freq)

        return iterators.EpochBatchIterator(
            dataset=dataset, collate_fn=dataset.collater, batch_sampler=alternating, seed=seed,
            num_shards=num_shards, shard_id=shard_id, num_workers=num_workers, epoch=epoch,
            buffer_size=data_buffer_size, disable_shuffling=True,
        )

    def track_mode(self, sample, update_num: int, ignore_grad: bool) -> None:
        """Records the kind of the update being accumulated; refuses an update mixing kinds."""
        if ignore_grad:  # a dummy batch may be of the other kind
            return
        mode = sample.get("mode", SUP)
        if self._step_mode[0] == update_num and self._step_mode[1] != mode:
            raise RuntimeError(f"update {update_num} mixes {self._step_mode[1]} and {mode} batches")
        self._step_mode = (update_num, mode)
        if mode != self.schedule.mode(update_num) and not self._warned_drift:
            self._warned_drift = True
            logger.warning(f"update {update_num} is {mode}, the schedule says {self.schedule.mode(update_num)}: "
                           "a batch was skipped (out of memory?) or update_freq/world size changed on resume")

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False, **kwargs):
        self.track_mode(sample, update_num, ignore_grad)
        return super().train_step(sample, model, criterion, optimizer, update_num, ignore_grad, **kwargs)

    def nonfinite_watched(self, model, sample) -> list:
        """Unsupervised batches call the inner wav2vec 2.0 model, not the CTC model around it."""
        if sample.get("mode", SUP) == SUP:
            return [model]
        return [model.w2v_encoder.w2v_model]  # as the criterion reaches it (fairseq's DDP wrappers proxy attributes)

    def optimizer_step(self, optimizer, model, update_num):
        if isinstance(optimizer, AMPOptimizer) or not isinstance(getattr(optimizer, "optimizer", None), DualAdam):
            raise TypeError(f"task sslasr_joint steps one optimizer state per loss: set optimizer._name="
                            f"sslasr_dual_adam (got {type(optimizer).__name__}; --amp cannot step one state, "
                            "use --fp16 or --bf16)")
        if self.skip_nonfinite_update(model, update_num, optimizer):
            return
        seen_update, mode = self._step_mode
        if seen_update != update_num:  # every micro-batch was a dummy
            mode = self.schedule.mode(update_num)
        optimizer.step(groups={mode})
