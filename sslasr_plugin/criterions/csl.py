"""sslasr_csl: contrastive semi-supervised learning on frame pseudo-labels (Xiao et al. 2021).

    fairseq-hydra-train --config-dir examples/csl --config-name csl common.user_dir=sslasr_plugin \
        task.data=$PWD/data/demo task.label_dir=$PWD/data/demo_pl checkpoint.save_dir=$PWD/exp/csl
"""
import math
from dataclasses import dataclass, field

import torch
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.logging import metrics

from .csl_loss import sample_segment_frames, supervised_contrastive_loss
from .frame_targets import aligned_frame_targets

_VALID_SEED = 0


@dataclass
class CslCriterionConfig(FairseqDataclass):
    temperature: float = field(default=0.1, metadata={"help": "softmax temperature tau (not in the paper; SupCon: 0.1)"})
    negatives: ChoiceEnum(["batch", "same_utterance"]) = field(
        default="same_utterance",
        metadata={"help": "denominator frames besides the positives: the whole batch, or the anchor's utterance "
                          "(the paper found same-utterance negatives better)"},
    )


@register_criterion("sslasr_csl", dataclass=CslCriterionConfig)
class CslCriterion(FairseqCriterion):
    def __init__(self, cfg: CslCriterionConfig, task):
        super().__init__(task)
        self.cfg = cfg
        self.pad = task.dictionaries[0].pad()

    def forward(self, model, sample, reduce=True):
        x, padding_mask = model.encoder_frames(**sample["net_input"])
        x, labels, lengths = aligned_frame_targets(x, padding_mask, sample["target_list"][0], self.pad, sample["id"])
        # validation draws the same frames every time, so checkpoint selection compares like with like
        generator = None if model.training else torch.Generator(labels.device).manual_seed(_VALID_SEED)
        utt, frame = sample_segment_frames(labels, lengths, generator)
        # the projection on the sampled frames only (~1 in 5 here), not on every frame
        loss, stats = supervised_contrastive_loss(
            model.head_outputs(x[utt, frame]), labels[utt, frame], utt, self.cfg.temperature, self.cfg.negatives
        )
        logging_output = {
            "loss": loss.item(),
            "sample_size": stats["anchors"],
            "nsentences": sample["id"].numel(),
            "ntokens": int(lengths.sum()),
            "segments": stats["frames"],
            "anchors": stats["anchors"],
            "positive_pairs": stats["positives_per_anchor"] * stats["anchors"],
            "retrieval_correct": stats["retrieval_correct"],
        }
        return loss, stats["anchors"], logging_output

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        total = {k: sum(log.get(k, 0) for log in logging_outputs)
                 for k in ("loss", "sample_size", "segments", "anchors", "positive_pairs", "retrieval_correct", "nsentences")}
        anchors = max(total["anchors"], 1)
        metrics.log_scalar("loss", total["loss"] / anchors / math.log(2), anchors, round=3)
        metrics.log_scalar("segments_per_utt", total["segments"] / max(total["nsentences"], 1), round=1)
        metrics.log_scalar("anchor_frac", total["anchors"] / max(total["segments"], 1), round=3)
        metrics.log_scalar("positives_per_anchor", total["positive_pairs"] / anchors, round=2)
        metrics.log_scalar("retrieval_acc", total["retrieval_correct"] / anchors, round=3)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
