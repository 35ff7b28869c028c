"""Supervised CTC on labeled audio, decodable with fairseq-generate.

fairseq's ``audio_finetuning`` trains CTC models but builds no generator for them, so
``fairseq-generate`` cannot decode what it trains.  This task is ``audio_finetuning`` plus a
CTC generator and a data check that runs before any worker starts.

    fairseq-generate DATA --user-dir sslasr_plugin --task sslasr_audio_ctc --path ckpt.pt \
        --gen-subset test --scoring wer --post-process letter --beam 1 --max-tokens 4000000

Beam search with an n-gram LM (``python -m data_prep.lm`` builds them), lexicon-based or
lexicon-free; ``--beam`` and ``--lm-weight`` are fairseq-generate's own options:

    ... --kenlm-model data/lm/word.bin --lexicon data/lm/lexicon.txt --beam 50 --lm-weight 2 --word-score 0
    ... --kenlm-model data/lm/letter.bin --beam 50 --lm-weight 1
"""
import logging
from dataclasses import dataclass, field
from typing import Optional

from fairseq.tasks import register_task
from fairseq.tasks.audio_finetuning import AudioFinetuningConfig, AudioFinetuningTask
from omegaconf import II

from sslasr_data.validate import validate_split
from ..decoding.ctc import CtcGenerator
from ..decoding.lm import LmBeamDecoder, LmDecodingConfig
from .nonfinite import NONFINITE_PATIENCE_HELP, NonFiniteGuard
from .speed_perturb import SpeedPerturbConfig, SpeedPerturbTask

logger = logging.getLogger(__name__)


@dataclass
class AudioCtcConfig(AudioFinetuningConfig, LmDecodingConfig, SpeedPerturbConfig):
    labels: Optional[str] = field(
        default="ltr", metadata={"help": "label file extension: {split}.{labels} and dict.{labels}.txt"}
    )
    check_data: bool = field(
        default=True,
        metadata={"help": "check manifest, audio files and labels of each split when it is loaded"},
    )
    nonfinite_patience: int = field(default=20, metadata={"help": NONFINITE_PATIENCE_HELP})
    train_subset: str = II("dataset.train_subset")


@register_task("sslasr_audio_ctc", dataclass=AudioCtcConfig)
class AudioCtcTask(NonFiniteGuard, SpeedPerturbTask, AudioFinetuningTask):
    cfg: AudioCtcConfig

    def load_dataset(self, split: str, task_cfg: AudioCtcConfig = None, **kwargs):
        task_cfg = task_cfg or self.cfg
        if self.cfg.check_data and task_cfg.get("multi_corpus_keys") is None:
            validate_split(self.cfg.data, split, task_cfg.labels, self.target_dictionary, self.cfg.sample_rate)
        super().load_dataset(split, task_cfg, **kwargs)
        if split == self.cfg.train_subset:
            self.datasets[split] = self.speed_perturbed(self.datasets[split])

    def build_generator(self, models, args, seq_gen_cls=None, extra_gen_cls_kwargs=None, **unused):
        """Greedy CTC decoding, or beam search with ``--kenlm-model`` (fairseq-generate's ``--beam``
        and ``--lm-weight`` apply only then)."""
        blank = self.target_dictionary.index(self.blank_symbol)
        if self.cfg.kenlm_model is None:
            if self.cfg.lexicon is not None:
                raise ValueError("--lexicon needs --kenlm-model (the word LM that goes with it)")
            return CtcGenerator(models, self.target_dictionary, blank=blank)
        if args.lm_weight == 0:
            logger.warning("--lm-weight is 0: the LM is not consulted (a lexicon still constrains the words)")
        decoder = LmBeamDecoder.from_config(self.cfg, self.target_dictionary, blank, args.beam, args.lm_weight)
        return CtcGenerator(models, self.target_dictionary, blank=blank, decoder=decoder)
