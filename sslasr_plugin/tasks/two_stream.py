"""The base of tasks that alternate updates on labeled and unlabeled audio (joint CPC + CTC, slimIPL).

It owns what they share: the training split as two streams (``data.two_stream_dataset``), the
batch list that gives every update one kind of batch (``data.alternating_batches``) and the
check that an update does not mix kinds.  A subclass says how unlabeled audio is read
(``unlabeled_dataset``) and which schedule it follows (``build_schedule``); validation and
decoding are plain CTC, as ``sslasr_audio_ctc``.
"""
import logging
from dataclasses import dataclass, field
from typing import List

from fairseq.data import ConcatDataset, data_utils
from omegaconf import II

from ..batch_modes import SUP, UNSUP, batch_mode, stream_of
from ..data.alternating_batches import Schedule, epoch_batches
from ..data.two_stream_dataset import TwoStreamDataset
from .audio_ctc import AudioCtcConfig, AudioCtcTask
from .batching import iterator_options, sampled_iterator

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


class TwoStreamTask(AudioCtcTask):
    cfg: TwoStreamConfig

    def __init__(self, cfg: TwoStreamConfig):
        super().__init__(cfg)
        self.schedule = self.build_schedule(cfg)
        self._step_mode = (None, None)  # (update_num, mode) of the update being accumulated
        self._warned_drift = False

    @staticmethod
    def build_schedule(cfg: TwoStreamConfig) -> Schedule:
        raise NotImplementedError

    def unlabeled_dataset(self, split: str, check: bool = True):
        """``split``'s audio for unlabeled updates (``check``: validate its manifest first)."""
        raise NotImplementedError

    # data --------------------------------------------------------------------------------------

    def unlabeled_perturbed(self, dataset):
        """An unlabeled stream, speed-perturbed as ``task.speed_perturb`` asks."""
        return self.speed_perturbed(dataset)

    def two_stream_dataset(self, sup, unsup) -> TwoStreamDataset:
        """The training split's dataset over its labeled and unlabeled streams."""
        return TwoStreamDataset(sup, unsup)

    def epoch_batch_list(self, dataset: TwoStreamDataset, batches, epoch: int, seed: int, shards: int,
                         freq: int) -> List[List[int]]:
        """The batch list of ``epoch``, laid out update by update (``epoch_batches``)."""
        return epoch_batches(self.schedule, batches, epoch, seed, shards * freq)

    def load_dataset(self, split: str, task_cfg: TwoStreamConfig = None, **kwargs):
        if split != self.cfg.train_subset:
            return super().load_dataset(split, task_cfg, **kwargs)
        names = [s.strip() for s in self.cfg.unlabeled_subsets.split(",") if s.strip()]
        unsup = [self.unlabeled_dataset(s) for s in names]
        if self.cfg.unsup_on_labeled:
            unsup.append(self.unlabeled_dataset(split, check=False))  # checked below, with its labels
        unsup = [self.unlabeled_perturbed(d) for d in unsup]
        if not unsup and (self.schedule.unsup_updates or
                          (self.schedule.pretrain_updates and self.schedule.warmup == UNSUP)):
            raise ValueError("unsupervised updates are scheduled but no audio is given for them: set "
                             "task.unlabeled_subsets or task.unsup_on_labeled=true")
        super().load_dataset(split, task_cfg, **kwargs)
        unsup = unsup[0] if len(unsup) == 1 else ConcatDataset(unsup) if unsup else None
        self.datasets[split] = self.two_stream_dataset(self.datasets[split], unsup)
        logger.info(f"{split}: {len(self.datasets[split].streams[SUP])} labeled utterances, "
                    f"{len(self.datasets[split].streams[UNSUP])} "
                    f"unlabeled ({', '.join(names + ([split] if self.cfg.unsup_on_labeled else []))}); "
                    f"schedule {self.schedule}")

    def get_batch_iterator(self, dataset, *args, **kwargs):
        if not isinstance(dataset, TwoStreamDataset):
            return super().get_batch_iterator(dataset, *args, **kwargs)
        opts = iterator_options(self, dataset, *args, **kwargs)
        dataset.set_epoch(opts["epoch"])  # the streams' batches follow the epoch's sizes (speed perturbation)
        batches = {}
        with data_utils.numpy_seed(opts["seed"]):
            for mode, stream in dataset.streams.items():
                local = stream.batch_by_size(stream.ordered_indices(), opts["max_tokens"], opts["max_sentences"],
                                             opts["required_batch_size_multiple"]) if len(stream) else []
                batches[mode] = [dataset.stream_indices(mode, b).tolist() for b in local]
        update_freq = list(self.cfg.update_freq)

        def alternating(ds, ep):
            freq = update_freq[min(ep, len(update_freq)) - 1]
            return self.epoch_batch_list(ds, batches, ep, opts["seed"], opts["num_shards"], freq)

        # the list is laid out update by update: fairseq must not shuffle it
        return sampled_iterator(dataset, alternating, opts, disable_shuffling=True)

    # training ----------------------------------------------------------------------------------

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False, **kwargs):
        self.track_mode(sample, update_num, ignore_grad)
        return super().train_step(sample, model, criterion, optimizer, update_num, ignore_grad, **kwargs)

    def track_mode(self, sample, update_num: int, ignore_grad: bool) -> None:
        """Records the kind of the update being accumulated; refuses an update mixing kinds."""
        if ignore_grad:  # a dummy batch may be of the other kind
            return
        mode = batch_mode(sample)
        if self._step_mode[0] == update_num and self._step_mode[1] != mode:
            raise RuntimeError(f"update {update_num} mixes {self._step_mode[1]} and {mode} batches")
        self._step_mode = (update_num, mode)
        scheduled = self.schedule.mode(update_num)
        if stream_of(mode) != scheduled and not self._warned_drift:
            self._warned_drift = True
            logger.warning(f"update {update_num} is {mode}, the schedule says {scheduled}: a batch was skipped "
                           "(out of memory?) or update_freq/world size changed on resume")

    def update_mode(self, update_num: int) -> str:
        """The kind of the update being stepped (the schedule's when every micro-batch was a dummy)."""
        seen_update, mode = self._step_mode
        return mode if seen_update == update_num else self.schedule.mode(update_num)
