"""Pair encoder frames with frame pseudo-labels (both at the encoder frame rate)."""
from typing import Tuple

import torch


class FrameLabelMismatch(ValueError):
    pass


def aligned_frame_targets(
    out: torch.Tensor, padding_mask, target: torch.Tensor, pad: int, ids: torch.Tensor, tolerance: int = 2
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Crop ``out`` (B, T, D) and ``target`` (B, T') to common frames; return them and the valid
    frames per utterance.  Label rows more than ``tolerance`` frames off the audio are an error
    (a label file at another frame rate, or for other audio)."""
    frames = (~padding_mask).sum(1) if padding_mask is not None else torch.full_like(ids, out.size(1))
    label_frames = (target != pad).sum(1)
    off = (frames - label_frames).abs() > tolerance
    if off.any():
        i = int(off.nonzero()[0])
        raise FrameLabelMismatch(
            f"utterance {int(ids[i])} has {int(frames[i])} encoder frames but {int(label_frames[i])} frame labels; "
            "the label file must have one label per encoder frame (check task.label_rate and that the labels "
            "were made for this manifest)"
        )
    t = min(out.size(1), target.size(1))
    return out[:, :t], target[:, :t], torch.minimum(frames, label_frames).clamp(max=t)
