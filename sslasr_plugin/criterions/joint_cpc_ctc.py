"""The two losses of joint masked CPC + CTC training, chosen per batch by its ``mode``.

- unsup: fairseq's wav2vec 2.0 masked contrastive loss (``Wav2vecCriterion``, InfoNCE) on the
  encoder's ``Wav2Vec2Model``, with continuous targets (``model.encoder.quantize_targets=false``,
  the paper's) or quantized ones, masking ``unsup_mask_prob``;
- sup: fairseq's CTC loss (``CtcCriterion``), the same mask embedding applied as SpecAugment
  with the model's own (smaller) ``mask_prob``, from ``ctc_mask_after_updates`` on.

Batches without a mode (validation) are CTC.  Logged: ``sup_loss`` and ``unsup_loss`` /
``unsup_accuracy`` per kind of update; ``loss`` is the CTC loss (in an interval with only
unsupervised updates, e.g. pre-training, it shows the last contrastive loss).
"""
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import List, Optional

from fairseq import metrics, utils
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.criterions.ctc import CtcCriterion, CtcCriterionConfig
from fairseq.criterions.wav2vec_criterion import Wav2vecCriterion

from ..batch_modes import SUP, UNSUP, batch_mode

_UNSUP_KEYS = ("loss", "sample_size", "nsentences", "correct", "count")


@dataclass
class JointCpcCtcConfig(CtcCriterionConfig):
    unsup_mask_prob: float = field(
        default=0.65,
        metadata={"help": "mask_prob of unsupervised updates, in fairseq's units (x frames / mask_length span "
                  "starts); paper: 0.065 starts per frame x span 10 = 0.65"},
    )
    unsup_loss_weights: Optional[List[float]] = field(
        default_factory=lambda: [0.0],
        metadata={"help": "weights of wav2vec 2.0's extra losses (codebook diversity if quantized, feature "
                  "penalty); paper: none, i.e. 0"},
    )
    ctc_mask_after_updates: int = field(
        default=0,
        metadata={"help": "CTC updates mask time steps (the model's mask_prob) only once this many updates, of "
                  "both kinds, are done; channel masking is not affected (paper code: saug_warmup 20k)"},
    )
    unsup_log_keys: List[str] = field(
        default_factory=lambda: ["prob_perplexity", "code_perplexity"],
        metadata={"help": "wav2vec 2.0 outputs to log (perplexities exist with quantized targets)"},
    )


@contextmanager
def _mask_prob(w2v_model, prob: float):
    saved = w2v_model.mask_prob
    w2v_model.mask_prob = prob
    try:
        yield
    finally:
        w2v_model.mask_prob = saved


@register_criterion("sslasr_joint_cpc_ctc", dataclass=JointCpcCtcConfig)
class JointCpcCtcCriterion(FairseqCriterion):
    def __init__(self, cfg: JointCpcCtcConfig, task):
        super().__init__(task)
        self.unsup_mask_prob = cfg.unsup_mask_prob
        self.ctc_mask_after_updates = cfg.ctc_mask_after_updates
        self.ctc = CtcCriterion(cfg, task)
        self.cpc = Wav2vecCriterion(task, infonce=True, loss_weights=list(cfg.unsup_loss_weights or []) or None,
                                    log_keys=list(cfg.unsup_log_keys))

    def forward(self, model, sample, reduce=True):
        if batch_mode(sample) == SUP:
            encoder = model.w2v_encoder
            if model.training and getattr(encoder, "num_updates", 0) < self.ctc_mask_after_updates:
                with _mask_prob(encoder.w2v_model, 0.0):  # the authors' code: iter > saug_warmup
                    return self.ctc(model, sample, reduce)
            return self.ctc(model, sample, reduce)
        w2v = model.w2v_encoder.w2v_model
        if getattr(w2v, "final_proj", None) is None:
            raise ValueError("the model has no contrastive-loss modules: set model.encoder.keep_pretraining_modules"
                             "=true (sslasr_ctc) for unsupervised updates")
        with _mask_prob(w2v, self.unsup_mask_prob):
            loss, sample_size, log = self.cpc(w2v, sample, reduce)
        return loss, sample_size, {f"{UNSUP}_{k}": v for k, v in log.items()}

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        sup = [log for log in logging_outputs if f"{UNSUP}_loss" not in log]
        unsup = [log for log in logging_outputs if f"{UNSUP}_loss" in log]
        if sup:
            CtcCriterion.reduce_metrics(sup)
            loss = utils.item(sum(log.get("loss", 0) for log in sup))
            size = utils.item(sum(log.get("sample_size", 0) for log in sup))
            metrics.log_scalar("sup_loss", loss / size / math.log(2), size, round=3)
        if unsup:
            total = {k: utils.item(sum(log.get(f"{UNSUP}_{k}", 0) for log in unsup)) for k in _UNSUP_KEYS}
            value = total["loss"] / max(total["sample_size"], 1) / math.log(2)
            metrics.log_scalar("unsup_loss", value, total["sample_size"], round=3)
            # weight 0: "loss" stays the CTC loss wherever there is one (see the module docstring)
            metrics.log_scalar("loss", value, 0, round=3)
            metrics.log_scalar("unsup_nsentences", total["nsentences"])
            metrics.log_scalar("_unsup_correct", total["correct"])
            metrics.log_scalar("_unsup_count", total["count"])
            metrics.log_derived(
                "unsup_accuracy",
                lambda m: round(m["_unsup_correct"].sum / m["_unsup_count"].sum, 5) if m["_unsup_count"].sum > 0
                else float("nan"),
            )
            extra = {k[len(UNSUP) + 1:] for log in unsup for k in log if k.startswith(f"{UNSUP}_")}
            extra -= set(_UNSUP_KEYS) | {"ntokens"}
            for key in sorted(extra):
                metrics.log_scalar(f"unsup_{key}", sum(log.get(f"{UNSUP}_{key}", 0) for log in unsup) / len(unsup),
                                   round=3)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return False
