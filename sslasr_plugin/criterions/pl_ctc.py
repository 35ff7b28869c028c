"""CTC on labeled batches and on pseudo-labeled ones, hard (slimIPL) or soft.

A batch's ``mode`` says which: ``sup`` (or none: validation) and ``pl`` with hard labels are
fairseq's CTC loss on ``target``; ``pl`` with ``pl_log_probs`` (the teacher's per-frame
log-probabilities, B x T x V) is the soft-label loss, per utterance

    soft_scale * mean over frames t of  w_t * CE(q_t, p_t)  -  soft_entropy_weight * mean_t H(p_t)

with q the teacher distribution sharpened by ``soft_temperature`` (q ~ q^(1/T)), p the
student's on the augmented input, and w_t = ``soft_blank_weight`` on frames whose teacher
argmax is blank (1 elsewhere; the mean is over the weights).  ``soft_ctc_weight`` = a mixes in
CTC on a transcript of the teacher's: (1 - a) * soft + a * CTC, where the transcript is the
greedy one (``soft_ctc_target=greedy``) or, with ``sampled``, a frame path drawn anew at every
update from q (after the temperature) and collapsed: sampled hard labels, sequence-level like
hard labels, distributed like soft ones.  Defaults: flashlight's soft-label mode (scale 20, no
regulariser).  Regularisers, each to counter the collapse of soft labels to blank: CTC mix
(sequence-level constraint back), sampled labels, blank down-weighting (removes the blank
attractor), temperature < 1 (less mass on blank in the targets), entropy bonus.

Logged: ``sup_loss`` and ``pl_loss`` (bits per utterance or token, as fairseq's ``loss``);
``pl_soft_ce`` (nats per frame) in soft mode; ``pl_sampled_rate``, the sampled transcripts'
tokens per greedy transcript token, with sampled labels.
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
