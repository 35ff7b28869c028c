"""Joint masked CPC + CTC (Talnikar et al. 2021): one run alternating unsupervised and
supervised updates of one model, each with its own optimizer state.

The batch's ``mode`` selects the loss (``sslasr_joint_cpc_ctc``) and the moments that the
optimizer step updates (``sslasr_dual_adam``); the two streams and their schedule are
``tasks.two_stream``'s.

    fairseq-hydra-train --config-dir examples/joint --config-name joint \
        common.user_dir=sslasr_plugin task.data=$PWD/data/demo checkpoint.save_dir=$PWD/exp/joint
"""
from dataclasses import dataclass, field

from fairseq.optim.amp_optimizer import AMPOptimizer
from fairseq.tasks import register_task
from fairseq.tasks.audio_pretraining import AudioPretrainingTask
from omegaconf import OmegaConf

from ..batch_modes import UNSUP, batch_mode
from ..data.alternating_batches import Schedule
from sslasr_data.validate import validate_split
from .two_stream import TwoStreamConfig, TwoStreamTask


@dataclass
class JointConfig(TwoStreamConfig):
    pretrain_updates: int = field(
        default=0,
        metadata={"help": "unsupervised-only updates before alternation starts (two-stage baseline: all "
                  "pre-training, with unsup_updates=0 after it)"},
    )


def steps_groups(optimizer) -> bool:
    """Whether fairseq's ``optimizer`` can step one mode's state: the optimizer declares
    ``supports_groups``, and AMP's scaler step forwards no groups."""
    return bool(getattr(optimizer, "supports_groups", False)) and not isinstance(optimizer, AMPOptimizer)


@register_task("sslasr_joint", dataclass=JointConfig)
class JointTask(TwoStreamTask):
    cfg: JointConfig

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

    def nonfinite_watched(self, model, sample) -> list:
        """Unsupervised batches call the inner wav2vec 2.0 model, not the CTC model around it."""
        if batch_mode(sample) == UNSUP:
            return [model.w2v_encoder.w2v_model]  # as the criterion reaches it (fairseq's DDP wrappers proxy attributes)
        return [model]

    def optimizer_step(self, optimizer, model, update_num):
        if not steps_groups(optimizer):
            raise TypeError(f"task sslasr_joint steps one optimizer state per loss: set optimizer._name="
                            f"sslasr_dual_adam (got {type(optimizer).__name__}; --amp cannot step one state, "
                            "use --fp16 or --bf16)")
        super().optimizer_step(optimizer, model, update_num)

    def take_step(self, optimizer, model, update_num):
        optimizer.step(groups={self.update_mode(update_num)})
