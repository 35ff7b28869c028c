"""CTC on labeled batches and on pseudo-labeled ones, hard (slimIPL) or soft.

``sup`` batches and ``pl`` batches with hard labels are fairseq's CTC loss; ``pl`` batches with
the teacher's per-frame log-probabilities (``pl_log_probs``) take the soft-label loss, with
regularisers against its collapse to blank (CTC mix, sampled labels, blank weighting,
temperature, entropy bonus).  The loss and its options: docs/design.md, "Soft pseudo-labels".
Logged: ``sup_loss``, ``pl_loss``; ``pl_soft_ce`` and ``pl_sampled_rate`` when they apply.
"""
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from fairseq import metrics, utils
from fairseq.criterions import register_criterion
from fairseq.criterions.ctc import CtcCriterion, CtcCriterionConfig
from fairseq.dataclass import ChoiceEnum

from ..batch_modes import PL, SUP, batch_mode
from ..decoding.ctc import emissions, sample_paths


@dataclass
class PlCtcConfig(CtcCriterionConfig):
    soft_scale: float = field(default=20.0, metadata={"help": "scale of the soft-label loss (flashlight: 20)"})
    soft_temperature: float = field(
        default=1.0, metadata={"help": "teacher distribution q^(1/T), renormalized; < 1 sharpens"}
    )
    soft_blank_weight: float = field(
        default=1.0, metadata={"help": "weight of frames whose teacher argmax is blank (0: left out)"}
    )
    soft_ctc_weight: float = field(
        default=0.0, metadata={"help": "a in (1 - a) * soft loss + a * CTC on the teacher's greedy transcript"}
    )
    soft_ctc_target: ChoiceEnum(["greedy", "sampled"]) = field(
        default="greedy", metadata={"help": "the transcript of soft_ctc_weight's CTC: the teacher's greedy one, or "
                                    "a path sampled from the teacher's frame distributions at every update (with "
                                    "sentence_avg=false the loss is still divided by the greedy token count)"}
    )
    soft_entropy_weight: float = field(
        default=0.0, metadata={"help": "bonus for the student's mean per-frame entropy (nats), times soft_scale"}
    )


@register_criterion("sslasr_pl_ctc", dataclass=PlCtcConfig)
class PlCtcCriterion(CtcCriterion):
    def __init__(self, cfg: PlCtcConfig, task):
        super().__init__(cfg, task)
        if not 0.0 <= cfg.soft_ctc_weight <= 1.0:
            raise ValueError(f"criterion.soft_ctc_weight must be in [0, 1] (got {cfg.soft_ctc_weight})")
        if cfg.soft_ctc_target not in ("greedy", "sampled"):
            raise ValueError(f"criterion.soft_ctc_target must be greedy or sampled (got {cfg.soft_ctc_target})")
        if cfg.soft_ctc_target == "sampled" and cfg.soft_ctc_weight == 0:
            raise ValueError("criterion.soft_ctc_target=sampled needs criterion.soft_ctc_weight > 0 (the weight of "
                             "CTC on the sampled transcripts; 1.0: sampled labels only)")
        if cfg.soft_ctc_target == "sampled" and getattr(getattr(task, "cfg", None), "pseudo_labels", "soft") != "soft":
            raise ValueError("criterion.soft_ctc_target=sampled samples from soft pseudo-labels: set "
                             "task.pseudo_labels=soft (with hard labels there are no distributions to sample)")
        if cfg.soft_temperature <= 0:
            raise ValueError(f"criterion.soft_temperature must be > 0 (got {cfg.soft_temperature})")
        self.cfg = cfg

    def forward(self, model, sample, reduce=True):
        mode = batch_mode(sample)
        if mode == PL and "pl_log_probs" in sample:
            loss, sample_size, log = self.soft_forward(model, sample)
        else:
            loss, sample_size, log = super().forward(model, sample, reduce)
        if mode in (SUP, PL) and self.training:
            log[f"{mode}_loss"] = log["loss"]
        return loss, sample_size, log

    def soft_forward(self, model, sample):
        cfg = self.cfg
        lprobs, lengths = emissions(model, sample["net_input"])  # (B, T, V)
        if not torch.equal(lengths.cpu(), sample["pl_frames"].cpu()):
            raise RuntimeError(f"soft pseudo-labels have {sample['pl_frames'].tolist()} frames, the model emits "
                               f"{lengths.tolist()}: labels and audio are misaligned")
        mask = torch.arange(lprobs.size(1), device=lprobs.device)[None] < lengths[:, None]
        valid = mask.float()
        lprobs = lprobs.masked_fill(~mask[..., None], 0.0)  # padded frames are -inf but for blank
        teacher = sample["pl_log_probs"].float()
        if cfg.soft_temperature != 1.0:
            teacher = torch.log_softmax(teacher / cfg.soft_temperature, dim=-1)
        ce = -(teacher.exp() * lprobs).sum(-1)  # (B, T)
        weight = valid
        if cfg.soft_blank_weight != 1.0:
            weight = valid * torch.where(teacher.argmax(-1) == self.blank_idx, cfg.soft_blank_weight, 1.0)
        soft = cfg.soft_scale * (ce * weight).sum(1) / weight.sum(1).clamp(min=1e-6)
        if cfg.soft_entropy_weight:
            entropy = -(lprobs.exp() * lprobs).sum(-1)
            soft = soft - cfg.soft_scale * cfg.soft_entropy_weight * (entropy * valid).sum(1) / valid.sum(1).clamp(min=1)
        loss = soft.sum()
        sampled = None
        if cfg.soft_ctc_weight > 0:
            if cfg.soft_ctc_target == "sampled":
                targets, target_lengths = self.sampled_targets(teacher, lengths)
                sampled = int(target_lengths.sum())
            else:
                pad_mask = (sample["target"] != self.pad_idx) & (sample["target"] != self.eos_idx)
                targets, target_lengths = sample["target"].masked_select(pad_mask), pad_mask.sum(-1)
            with torch.backends.cudnn.flags(enabled=False):
                ctc = F.ctc_loss(lprobs.transpose(0, 1), targets, lengths, target_lengths, blank=self.blank_idx,
                                 reduction="sum", zero_infinity=self.zero_infinity)
            loss = (1 - cfg.soft_ctc_weight) * loss + cfg.soft_ctc_weight * ctc
        ntokens = int(sample["ntokens"])
        sample_size = sample["target"].size(0) if self.sentence_avg else ntokens
        log = {
            "loss": utils.item(loss.data), "ntokens": ntokens, "nsentences": sample["id"].numel(),
            "sample_size": sample_size, "pl_soft_ce": utils.item((ce * valid).sum().data),
            "pl_soft_frames": utils.item(valid.sum().data),
        }
        if sampled is not None:
            log["pl_sampled_tokens"] = sampled
        return loss, sample_size, log

    def sampled_targets(self, teacher: torch.Tensor, lengths: torch.Tensor):
        """CTC targets (concatenated) and their lengths: one path per utterance drawn from the
        teacher's frame distributions, collapsed, with pad and eos left out as in the greedy labels."""
        drop = torch.tensor([self.pad_idx, self.eos_idx], device=teacher.device)
        paths = [p[~torch.isin(p, drop)] for p in sample_paths(teacher, lengths, self.blank_idx)]
        return torch.cat(paths).long(), torch.tensor([len(p) for p in paths], device=teacher.device)

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        if utils.item(sum(log.get("ntokens", 0) for log in logging_outputs)) > 0:
            CtcCriterion.reduce_metrics(logging_outputs)
        else:  # only empty pseudo-labels (an untrained model emits none): fairseq's would divide by 0
            loss = utils.item(sum(log.get("loss", 0) for log in logging_outputs))
            size = utils.item(sum(log.get("sample_size", 0) for log in logging_outputs))
            metrics.log_scalar("loss", loss / max(size, 1) / math.log(2), size, round=3)
        for mode in (SUP, PL):
            logs = [log for log in logging_outputs if f"{mode}_loss" in log]
            if logs:
                loss = utils.item(sum(log[f"{mode}_loss"] for log in logs))
                size = utils.item(sum(log.get("sample_size", 0) for log in logs))
                metrics.log_scalar(f"{mode}_loss", loss / max(size, 1) / math.log(2), size, round=3)
        frames = utils.item(sum(log.get("pl_soft_frames", 0) for log in logging_outputs))
        if frames:
            ce = utils.item(sum(log.get("pl_soft_ce", 0) for log in logging_outputs))
            metrics.log_scalar("pl_soft_ce", ce / frames, frames, round=4)
        logs = [log for log in logging_outputs if "pl_sampled_tokens" in log]
        if logs:
            greedy = utils.item(sum(log.get("ntokens", 0) for log in logs))
            metrics.log_scalar("pl_sampled_rate", utils.item(sum(log["pl_sampled_tokens"] for log in logs)) /
                               max(greedy, 1), greedy, round=3)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return False
