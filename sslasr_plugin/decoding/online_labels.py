"""Pseudo-labels from the model being trained, and the signs that they are collapsing.

``label_batch`` labels one batch with a CTC model in eval mode (greedy or LM beam-search
transcripts, and the frame distributions for soft labels); ``LabelStats`` measure collapse as it happens (blank share,
entropy, token rate, error rate against oracle transcripts); ``CollapseDetector`` fires when the
token rate falls below a fraction of the labeled data's.  The rule: docs/design.md, "Collapse".
"""
import math
from collections import deque
from dataclasses import dataclass, fields
from typing import Dict, List, Optional, Sequence

import editdistance
import torch

from .ctc import emissions, greedy_decode


@dataclass
class LabelStats:
    """Sums over labeled utterances (they add up across batches and ranks)."""
    utterances: int = 0
    frames: int = 0
    blank_frames: int = 0
    entropy: float = 0.0  # summed over frames, nats
    tokens: int = 0
    seconds: float = 0.0  # audio labeled
    oracle_errors: int = 0  # edit distance to the oracle transcripts, where known
    oracle_tokens: int = 0

    def __add__(self, other: "LabelStats") -> "LabelStats":
        return LabelStats(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def as_dict(self) -> Dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else float("nan")


@dataclass
class OnlineLabels:
    tokens: List[torch.Tensor]  # per utterance, int16 on the CPU
    log_probs: Optional[List[torch.Tensor]]  # per utterance (frames, vocab), fp16 on the CPU; soft labels only
    stats: LabelStats
    errors: List[Optional[int]]  # per utterance: edit distance to its oracle transcript (None: none known)


def oracle_errors(tokens: Sequence[torch.Tensor], oracle: Optional[Sequence[Optional[Sequence[int]]]]) -> List[Optional[int]]:
    """Per utterance, the edit distance of its label to the oracle transcript, None where there is none."""
    oracle = oracle if oracle is not None else [None] * len(tokens)
    return [None if ref is None else editdistance.eval(hyp.tolist(), list(ref)) for hyp, ref in zip(tokens, oracle)]


def label_stats(lprobs: torch.Tensor, lengths: torch.Tensor, tokens: Sequence[torch.Tensor], blank: int,
                seconds: float, oracle: Optional[Sequence[Optional[Sequence[int]]]] = None,
                errors: Optional[Sequence[Optional[int]]] = None) -> LabelStats:
    """The batch's sums; ``errors``: :func:`oracle_errors` of ``tokens``, when already counted."""
    valid = torch.arange(lprobs.size(1), device=lprobs.device)[None, :] < lengths[:, None]
    entropy = -(lprobs.exp() * lprobs).sum(-1)
    stats = LabelStats(
        utterances=lprobs.size(0), frames=int(valid.sum()),
        blank_frames=int(((lprobs.argmax(-1) == blank) & valid).sum()),
        entropy=float(entropy.masked_fill(~valid, 0).sum()), tokens=sum(len(t) for t in tokens), seconds=seconds,
    )
    errors = oracle_errors(tokens, oracle) if errors is None else errors
    for e, ref in zip(errors, oracle or []):
        if ref is not None:
            stats.oracle_errors += e
            stats.oracle_tokens += len(ref)
    return stats


@torch.no_grad()
def label_batch(teacher, net_input, blank: int, drop: Sequence[int] = (), soft: bool = False,
                sample_rate: int = 16000, oracle=None, decoder=greedy_decode) -> OnlineLabels:
    """CTC pseudo-labels of one batch by ``teacher`` in eval mode (its mode is restored), greedy or
    by ``decoder`` (e.g. decoding.lm.LmBeamDecoder).  ``drop``: token ids removed from the
    transcripts besides blank (fairseq's pad and eos)."""
    was_training = teacher.training
    teacher.eval()
    try:
        lprobs, lengths = emissions(teacher, net_input)
    finally:
        teacher.train(was_training)
    tokens = []
    for hyp in decoder(lprobs.cpu(), lengths.cpu(), blank):
        t = hyp["tokens"]
        for d in drop:
            t = t[t != d]
        tokens.append(t.to(torch.int16).cpu())
    source, pad = net_input["source"], net_input.get("padding_mask")
    samples = (~pad).sum() if pad is not None else torch.tensor(source.numel())
    errors = oracle_errors(tokens, oracle)
    stats = label_stats(lprobs, lengths, tokens, blank, float(samples) / sample_rate, oracle, errors)
    log_probs = [lprobs[b, : lengths[b]].half().cpu() for b in range(lprobs.size(0))] if soft else None
    return OnlineLabels(tokens, log_probs, stats, errors)


class CollapseDetector:
    """Watches the token rate of the last ``window`` labeled batches against the labeled data's."""

    def __init__(self, reference_rate: float, min_ratio: float = 0.5, window: int = 10,
                 vocab_size: Optional[int] = None):
        if not reference_rate > 0:
            raise ValueError(f"reference token rate must be > 0 (got {reference_rate})")
        self.reference_rate, self.min_ratio = reference_rate, min_ratio
        self.max_entropy = math.log(vocab_size) if vocab_size and vocab_size > 1 else None
        self.recent = deque(maxlen=window)
        self.collapsed = False

    def update(self, stats: LabelStats, update_num: int) -> Optional[str]:
        """Adds one labeled batch; returns a message when the state changes (collapse or recovery)."""
        self.recent.append(stats)
        total = sum(self.recent, LabelStats())
        ratio = total.tokens_per_second / self.reference_rate
        if len(self.recent) < self.recent.maxlen and not self.collapsed:
            return None  # too few batches to judge
        was = self.collapsed
        # hysteresis: recovery needs 1.2x the threshold, so a rate hovering at it does not flap
        self.collapsed = ratio < self.min_ratio * (1.2 if was else 1.0)
        if self.collapsed == was:
            return None
        entropy = total.entropy / max(total.frames, 1)
        where = (f"update {update_num}: the last {len(self.recent)} pseudo-labeled batches have "
                 f"{total.tokens_per_second:.2f} tokens per second of audio, {ratio:.2f}x the labeled data's "
                 f"{self.reference_rate:.2f} (blank argmax on {total.blank_frames / max(total.frames, 1):.1%} of "
                 f"frames, entropy {entropy:.3f} nats/frame)")
        if self.collapsed and self.max_entropy is not None and entropy > 0.5 * self.max_entropy:
            return (f"PSEUDO-LABEL COLLAPSE at {where}. The frame distributions are flattening toward uniform "
                    f"(entropy {entropy / self.max_entropy:.0%} of the uniform distribution's "
                    f"{self.max_entropy:.2f}): the labels lose their tokens. An entropy bonus "
                    f"(criterion.soft_entropy_weight) or a soft_temperature above 1 compounds when the model labels "
                    f"its own targets: lower or remove it, or slow the loop (task.cache_size, an EMA teacher); "
                    f"see docs/RESULTS.md")
        if self.collapsed:
            return (f"PSEUDO-LABEL COLLAPSE at {where}. The model labels less and less speech and trains on its "
                    f"own blanks: lower task.unsup_updates or the LR, use a larger cache (task.cache_size, "
                    f"cache_replace_prob) or an EMA teacher (ema.store_ema=true); soft labels: "
                    f"criterion.soft_blank_weight / soft_temperature / soft_entropy_weight / "
                    f"soft_ctc_weight with soft_ctc_target=sampled; see docs/RESULTS.md")
        return f"pseudo-labels recovered at {where}"
