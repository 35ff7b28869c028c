"""CTC decoding as a function of log-probabilities, and the generator fairseq-generate calls.

Greedy (best path) decoding lives in ``greedy_decode``; a beam or LM decoder plugs in as
another function with the same signature, chosen in ``CtcGenerator``.  ``sample_paths`` draws a
path instead of taking the best one (sampled pseudo-labels).
"""
from typing import Dict, List, Optional, Tuple

import torch


def best_paths(lprobs: torch.Tensor, lengths: torch.Tensor) -> List[Tuple[torch.Tensor, torch.Tensor]]:
    """Per utterance of ``lprobs`` (B, T, V) with ``lengths`` (B,) valid frames: the best frame
    path (each frame's argmax, blanks and repeats kept) and each frame's log-prob on it."""
    best, labels = lprobs.max(dim=-1)
    return [(labels[b, : lengths[b]], best[b, : lengths[b]]) for b in range(lprobs.size(0))]


def greedy_decode(lprobs: torch.Tensor, lengths: torch.Tensor, blank: int) -> List[Dict[str, torch.Tensor]]:
    """Best-path CTC decoding of ``lprobs`` (B, T, V) with ``lengths`` (B,) valid frames.

    Returns per utterance: ``tokens`` (repeats collapsed, blanks removed), ``score`` (log-prob
    of the best frame path) and ``positional_scores`` (log-prob of each token's first frame).
    """
    hypos = []
    for frames, scores in best_paths(lprobs, lengths):
        new_run = torch.ones_like(frames, dtype=torch.bool)
        new_run[1:] = frames[1:] != frames[:-1]
        keep = new_run & (frames != blank)
        hypos.append({
            "tokens": frames[keep],
            "score": scores.sum(),
            "positional_scores": scores[keep].float(),
        })
    return hypos


def sample_paths(lprobs: torch.Tensor, lengths: torch.Tensor, blank: int,
                 generator: Optional[torch.Generator] = None) -> List[torch.Tensor]:
    """One frame path per utterance drawn from the per-frame distributions ``exp(lprobs)``
    (B, T, V), frames independent (Gumbel-max: the argmax of ``lprobs`` plus Gumbel noise), and
    collapsed as CTC collapses a path (repeats merged, blanks removed): the tokens of each."""
    uniform = torch.rand(lprobs.shape, generator=generator, device=lprobs.device).clamp_(min=1e-20)
    noisy = lprobs.float() - torch.log(-torch.log(uniform))
    return [hyp["tokens"] for hyp in greedy_decode(noisy, lengths, blank)]


def emissions(model, net_input) -> (torch.Tensor, torch.Tensor):
    """One CTC model's log-probs (B, T, V) in fp32 and the valid frames of each row."""
    net_output = model(**net_input)
    lprobs = model.get_normalized_probs(net_output, log_probs=True).transpose(0, 1).float()
    pad = net_output.get("padding_mask")
    lengths = ((~pad).sum(-1) if pad is not None
               else torch.full((lprobs.size(0),), lprobs.size(1), device=lprobs.device))
    return lprobs, lengths


class CtcGenerator:
    """What ``task.build_generator`` returns for CTC models: fairseq-generate's hypothesis dicts."""

    def __init__(self, models, tgt_dict, blank: int, decoder=greedy_decode):
        self.models = models
        self.blank = blank
        self.decoder = decoder
        self.symbols_to_strip_from_output = {tgt_dict.bos(), tgt_dict.eos(), tgt_dict.pad()}

    @torch.no_grad()
    def emissions(self, models, net_input) -> (torch.Tensor, torch.Tensor):
        """Log-probs (B, T, V) averaged over the ensemble, and the valid frames of each row."""
        outputs = [emissions(model, net_input) for model in models]
        return sum(lp for lp, _ in outputs) / len(models), outputs[0][1]

    @torch.no_grad()
    def generate(self, models, sample, **unused):
        lprobs, lengths = self.emissions(models, sample["net_input"])
        hypos = self.decoder(lprobs.float().cpu(), lengths.cpu(), self.blank)
        return [[dict(h, alignment=None)] for h in hypos]
