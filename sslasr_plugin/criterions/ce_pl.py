"""sslasr_ce_pl: frame-level cross-entropy on pseudo-labels, the CE-PL baseline of CSL."""
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass
from fairseq.logging import metrics

from .frame_targets import aligned_frame_targets


@dataclass
class CePlCriterionConfig(FairseqDataclass):
    pass


@register_criterion("sslasr_ce_pl", dataclass=CePlCriterionConfig)
class CePlCriterion(FairseqCriterion):
    def __init__(self, cfg: CePlCriterionConfig, task):
        super().__init__(task)
        self.pad = task.dictionaries[0].pad()

    def forward(self, model, sample, reduce=True):
        logits, padding_mask = model.frame_outputs(**sample["net_input"])
        logits, labels, lengths = aligned_frame_targets(logits, padding_mask, sample["target_list"][0], self.pad, sample["id"])
        valid = torch.arange(labels.size(1), device=labels.device)[None, :] < lengths[:, None]
        logits, labels = logits[valid].float(), labels[valid].long()
        loss = F.cross_entropy(logits, labels, reduction="sum")
        frames = int(valid.sum())
        logging_output = {
            "loss": loss.item(),
            "sample_size": frames,
            "ntokens": frames,
            "nsentences": sample["id"].numel(),
            "correct": int((logits.argmax(-1) == labels).sum()),
        }
        return loss, frames, logging_output

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        frames = max(sum(log.get("sample_size", 0) for log in logging_outputs), 1)
        metrics.log_scalar("loss", sum(log.get("loss", 0) for log in logging_outputs) / frames / math.log(2), frames, round=3)
        metrics.log_scalar("frame_acc", sum(log.get("correct", 0) for log in logging_outputs) / frames, round=3)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
