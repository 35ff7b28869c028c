"""CTC beam search with a KenLM n-gram LM: torchaudio's ``ctc_decoder`` (flashlight-text).

Lexicon decoding (a word LM and a lexicon: every hypothesis is a sequence of lexicon words) or
lexicon-free decoding (a letter LM over the CTC dictionary's letters, '|' between words).
``data_prep.lm`` builds both.  Options follow fairseq's own w2l decoder
(examples/speech_recognition): ``--kenlm-model``, ``--lexicon``, ``--word-score``,
``--beam-threshold``, ``--beam-size-token``, ``--unk-weight``, ``--sil-weight``; the beam size
and LM weight are fairseq-generate's own ``--beam`` and ``--lm-weight``.
"""
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch
from fairseq.dataclass import FairseqDataclass


class LmDecodingError(RuntimeError):
    """An LM or lexicon file cannot be used; the message names the file and the fix."""


@dataclass
class LmDecodingConfig(FairseqDataclass):
    """Task options for LM decoding; with no ``kenlm_model`` decoding is greedy."""

    kenlm_model: Optional[str] = field(
        default=None, metadata={"help": "KenLM model (ARPA or binary) for beam search; none: greedy decoding, "
                                        "whatever --beam says. Word LM with --lexicon, letter LM without"})
    lexicon: Optional[str] = field(
        default=None, metadata={"help": "lexicon (WORD<TAB>W O R D |) for word-LM decoding; none: lexicon-free"})
    word_score: float = field(default=0.0, metadata={"help": "score added per word (lexicon decoding)"})
    beam_threshold: float = field(
        default=25.0, metadata={"help": "prune hypotheses scoring this far below the best (fairseq w2l: 25)"})
    beam_size_token: Optional[int] = field(
        default=None, metadata={"help": "tokens considered per frame (default: the whole dictionary)"})
    unk_weight: float = field(default=-math.inf, metadata={"help": "score of a word outside the lexicon"})
    sil_weight: float = field(default=0.0, metadata={"help": "score added per word boundary '|'"})


def _check_file(path: Optional[str], what: str) -> str:
    if not path or not Path(path).is_file():
        raise LmDecodingError(f"{what} {path} does not exist; build it with 'python -m data_prep.lm --out DIR'")
    return str(path)


def check_lexicon(path: str, tokens: Sequence[str]) -> None:
    """Every line must be a word and its spelling in ``tokens``; else name the file and line."""
    known, number = set(tokens), 0
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            unknown = [t for t in fields[1:] if t not in known]
            if len(fields) < 2 or unknown:
                why = f"symbols {unknown} are not in the CTC dictionary" if unknown else "it has no spelling"
                raise LmDecodingError(f"{path}:{number}: '{line.rstrip()}' is not a lexicon line ({why}); "
                                      "expected 'WORD<TAB>W O R D |' (python -m data_prep.lm writes one)")
    if number == 0:
        raise LmDecodingError(f"{path} is empty; expected 'WORD<TAB>W O R D |' lines")


class LmBeamDecoder:
    """``decoder(lprobs, lengths, blank)`` like ``ctc.greedy_decode``, by beam search with an LM."""

    def __init__(self, tokens: Sequence[str], blank: int, kenlm_model: str, lexicon: Optional[str] = None,
                 beam: int = 50, lm_weight: float = 2.0, word_score: float = 0.0, beam_threshold: float = 25.0,
                 beam_size_token: Optional[int] = None, unk_weight: float = -math.inf, sil_weight: float = 0.0,
                 silence: str = "|"):
        from torchaudio.models.decoder import ctc_decoder

        _check_file(kenlm_model, "KenLM model")
        if lexicon is not None:
            check_lexicon(_check_file(lexicon, "lexicon"), tokens)
        self.blank = blank
        if silence not in tokens:
            raise LmDecodingError(f"the CTC dictionary has no word boundary {silence!r}, which LM decoding needs: "
                                  "decode a letter model trained on a dict.ltr.txt that lists '|'")
        self.silence = list(tokens).index(silence)
        try:
            with tempfile.NamedTemporaryFile("w", suffix=".txt") as lm_dict:
                # Lexicon-free, torchaudio 2.11 builds the LM's vocabulary from a hash map, so the
                # LM would score other letters than the decoder's; a file keeps the token order.
                lm_dict.write("".join(f"{token}\n" for token in tokens))
                lm_dict.flush()
                self.decoder = ctc_decoder(
                    lexicon=lexicon, tokens=list(tokens), lm=kenlm_model, lm_dict=None if lexicon else lm_dict.name,
                    beam_size=beam, beam_size_token=beam_size_token, beam_threshold=beam_threshold,
                    lm_weight=lm_weight, word_score=word_score, unk_score=unk_weight, sil_score=sil_weight,
                    blank_token=tokens[blank], sil_token=silence)
        except (RuntimeError, ValueError) as err:
            raise LmDecodingError(f"{kenlm_model} cannot be loaded as a KenLM model (ARPA or binary): {err}; "
                                  "rebuild it with 'python -m data_prep.lm --out DIR --overwrite'") from err

    @classmethod
    def from_config(cls, cfg: LmDecodingConfig, dictionary, blank: int, beam: int, lm_weight: float):
        """The decoder a task's LM options describe (``beam`` and ``lm_weight`` come from elsewhere:
        fairseq-generate's own options, or slimIPL's labeling options)."""
        return cls(dictionary.symbols, blank, cfg.kenlm_model, cfg.lexicon, beam=beam, lm_weight=lm_weight,
                   word_score=cfg.word_score, beam_threshold=cfg.beam_threshold,
                   beam_size_token=cfg.beam_size_token, unk_weight=cfg.unk_weight, sil_weight=cfg.sil_weight)

    def __call__(self, lprobs: torch.Tensor, lengths: torch.Tensor, blank: int) -> List[Dict[str, torch.Tensor]]:
        assert blank == self.blank, f"decoder built for blank {self.blank}, called with {blank}"
        lprobs = lprobs.float().contiguous()
        hypos = []
        for b, nbest in enumerate(self.decoder(lprobs, lengths.to(torch.int32))):
            best = nbest[0]
            keep = best.tokens != self.silence
            keep[1:-1] = True  # word boundaries count only between words
            tokens = best.tokens[keep]
            frames = best.timesteps[keep].long()
            hypos.append({
                "tokens": tokens,
                "score": torch.tensor(best.score),
                "positional_scores": lprobs[b, frames, tokens],
            })
        return hypos


def aligned_path(lprobs: torch.Tensor, tokens: torch.Tensor, blank: int) -> torch.Tensor:
    """The frame path (T,) of transcript ``tokens`` through ``lprobs`` (T, V): torchaudio's CTC
    forced alignment, so that a beam-search transcript becomes frame labels (CSL, CE-PL) the way
    a best path does; collapsed, the path gives ``tokens`` back.  No token: all blank."""
    from torchaudio.functional import forced_align

    if tokens.numel() == 0:
        return torch.full((lprobs.size(0),), blank, dtype=torch.long)
    path, _ = forced_align(lprobs[None].float().contiguous(), tokens[None].long(), blank=blank)
    return path[0].long()
