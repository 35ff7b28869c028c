"""The CSL loss (Xiao, Fuegen, Mohamed 2021) as functions of tensors, callable without fairseq.

A *segment* is a maximal run of frames that carry the same pseudo-label; one frame is sampled
per segment, and a supervised contrastive loss (Khosla et al. 2020) is computed over the
sampled, L2-normalized projections: frames with the same pseudo-label are positives, all other
sampled frames of the allowed negative set are in the denominator.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

NEGATIVE_MODES = ("batch", "same_utterance")


def sample_segment_frames(
    labels: torch.Tensor, lengths: torch.Tensor, generator: Optional[torch.Generator] = None
) -> Tuple[torch.Tensor, torch.Tensor]:
    """One uniformly drawn frame per segment of equal labels.

    labels: (B, T) frame pseudo-labels; lengths: (B,) valid frames per row.
    Returns (utterance index, frame index) of the sampled frames, segments in time order.
    """
    B, T = labels.shape
    valid = torch.arange(T, device=labels.device)[None, :] < lengths[:, None]
    starts = valid.clone()
    starts[:, 1:] &= labels[:, 1:] != labels[:, :-1]
    # Segment id of every valid frame (row-major), then one random frame per segment.
    seg_id = torch.cumsum(starts.flatten().long(), 0) - 1
    seg_id = seg_id.view(B, T)[valid]
    utt, frame = valid.nonzero(as_tuple=True)
    num_segments = int(starts.sum())
    noise = torch.rand(seg_id.numel(), generator=generator, device=labels.device)
    # Per segment, keep the frame with the largest random key.
    best = torch.full((num_segments,), -1.0, device=labels.device).scatter_reduce(0, seg_id, noise, "amax")
    chosen = noise == best[seg_id]
    return utt[chosen], frame[chosen]


def supervised_contrastive_loss(
    z: torch.Tensor,
    labels: torch.Tensor,
    utterance: torch.Tensor,
    temperature: float = 0.1,
    negatives: str = "batch",
) -> Tuple[torch.Tensor, dict]:
    """Sum over anchors with a positive of -1/|P(i)| sum_p log(exp(z_i.z_p/t) / sum_a exp(z_i.z_a/t)).

    z: (N, D) L2-normalized embeddings of the sampled frames; labels, utterance: (N,).
    negatives="batch": A(i) = every other sampled frame; "same_utterance": A(i) = the positives
    plus the frames of i's own utterance (the paper found same-utterance negatives better).
    Returns the summed loss and statistics (anchors used, mean positives per anchor, and the
    retrieval accuracy: how often i's nearest frame in A(i) is a positive).
    """
    if negatives not in NEGATIVE_MODES:
        raise ValueError(f"negatives must be one of {NEGATIVE_MODES}, got {negatives!r}")
    n = z.size(0)
    eye = torch.eye(n, dtype=torch.bool, device=z.device)
    positive = (labels[:, None] == labels[None, :]) & ~eye
    allowed = ~eye
    if negatives == "same_utterance":
        allowed &= positive | (utterance[:, None] == utterance[None, :])
    logits = (z @ z.t()) / temperature
    logits = logits.masked_fill(~allowed, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    num_pos = positive.sum(1)
    anchors = num_pos > 0
    pos_log_prob = log_prob.masked_fill(~positive, 0.0).sum(1)
    loss = -(pos_log_prob[anchors] / num_pos[anchors]).sum()
    with torch.no_grad():
        nearest = logits.argmax(1)
        hits = positive[torch.arange(n, device=z.device), nearest] & anchors
    stats = {
        "anchors": int(anchors.sum()),
        "frames": n,
        "positives_per_anchor": float(num_pos[anchors].float().mean()) if anchors.any() else 0.0,
        "retrieval_correct": int(hits.sum()),
    }
    return loss, stats


def normalize(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, dim=-1)
