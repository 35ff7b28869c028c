"""CTC speech recognizer: a wav2vec 2.0 or HuBERT encoder (from scratch or a checkpoint) + linear head.

fairseq's ``wav2vec_ctc`` and ``hubert_ctc`` can only start from a pre-trained checkpoint
(``w2v_path``), each of its own kind.  This model takes either kind of checkpoint, and also
trains from scratch: it describes the encoder by ``encoder`` (an ``sslasr_wav2vec2`` config)
and hands fairseq's ``Wav2VecEncoder`` the same ``w2v_args`` that fairseq stores in every
fine-tuned checkpoint, so that training, resuming and decoding all go through fairseq's own
code path.
"""
import dataclasses
from dataclasses import dataclass, field
from typing import Optional

import torch
from fairseq.models import register_model
from fairseq.models.hubert.hubert_asr import HubertEncoder
from fairseq.models.wav2vec.wav2vec2_asr import Wav2Vec2CtcConfig, Wav2VecCtc, Wav2VecEncoder
from omegaconf import OmegaConf

from .wav2vec2 import SslAsrWav2Vec2Config

# Fine-tuning options that also exist in the encoder config: the fine-tuning value wins, as
# fairseq's arg_overrides do for a pre-trained checkpoint.
_SHARED_OPTIONS = sorted(
    ({f.name for f in dataclasses.fields(Wav2Vec2CtcConfig)} & {f.name for f in dataclasses.fields(SslAsrWav2Vec2Config)})
    - {"_name"}
)


@dataclass
class SslAsrCtcConfig(Wav2Vec2CtcConfig):
    w2v_path: Optional[str] = field(
        default=None,
        metadata={"help": "fairseq wav2vec 2.0 checkpoint to start from; unset: train `encoder` from scratch"},
    )
    encoder: SslAsrWav2Vec2Config = field(
        default_factory=SslAsrWav2Vec2Config,
        metadata={"help": "architecture of the from-scratch encoder (unused with w2v_path)"},
    )
    autoregressive: bool = field(
        default=False, metadata={"help": "always false for CTC (read by fairseq's HubertEncoder)"}
    )


def scratch_w2v_args(cfg: SslAsrCtcConfig):
    """The w2v_args (pre-training task + model config) of a randomly initialized encoder."""
    model = OmegaConf.merge(OmegaConf.structured(SslAsrWav2Vec2Config), cfg.encoder)
    for name in _SHARED_OPTIONS:
        model[name] = cfg[name]
    model.encoder_layerdrop = cfg.layerdrop
    model._name = "sslasr_wav2vec2"
    task = {"_name": "audio_pretraining", "data": cfg.data, "normalize": cfg.normalize}
    return OmegaConf.create({"task": task, "model": OmegaConf.to_container(model)})


class SslAsrEncoder(Wav2VecEncoder):
    def __init__(self, cfg: SslAsrCtcConfig, output_size: Optional[int] = None):
        if cfg.w2v_path is None and cfg.w2v_args is None:
            cfg.w2v_args = scratch_w2v_args(cfg)
        super().__init__(cfg, output_size)


def _peek_checkpoint(path: str) -> dict:
    """The checkpoint's pickle, tensors memory-mapped (not read): enough for its config and task state."""
    return torch.load(path, map_location="cpu", mmap=True, weights_only=True)


def _model_name(state: dict) -> str:
    if state.get("cfg") is not None:
        return state["cfg"]["model"]["_name"]
    return getattr(state.get("args"), "arch", "wav2vec2")  # fairseq < 0.10 checkpoints


@register_model("sslasr_ctc", dataclass=SslAsrCtcConfig)
class SslAsrCtc(Wav2VecCtc):
    """fairseq's Wav2VecCtc (logits, blank handling, normalized probs) over a wav2vec 2.0
    encoder (SslAsrEncoder) or fairseq's HubertEncoder."""

    @classmethod
    def build_model(cls, cfg: SslAsrCtcConfig, task):
        if cfg.w2v_args is not None:  # reloading a fine-tuned model
            hubert = cfg.w2v_args.model._name == "hubert"
        elif cfg.w2v_path is not None:  # starting from a pre-trained checkpoint
            state = _peek_checkpoint(cfg.w2v_path)
            hubert = _model_name(state) == "hubert"
            if hubert:
                # HuBERT is built with its label dictionaries: keep them in the task state, so that
                # fine-tuned checkpoints reload (decoding, resuming) without the pre-training labels.
                task.state.merge_state_dict({"dictionaries": state["task_state"]["dictionaries"]})
        else:
            hubert = False
        if hubert:
            return _deepcopy_safe(cls(cfg, HubertEncoder(cfg, task)))
        return _deepcopy_safe(cls(cfg, SslAsrEncoder(cfg, len(task.target_dictionary))))


def _deepcopy_safe(model: torch.nn.Module) -> torch.nn.Module:
    """fairseq's EMA (``ema.store_ema``) deep-copies the model, which fails on the positional
    convolution's weight norm: its ``weight`` is computed from ``weight_g``/``weight_v`` and is
    not a graph leaf.  The weight-norm hook recomputes ``weight`` before every forward, so a
    detached copy in between changes nothing but makes the model copyable."""
    for module in model.modules():
        if hasattr(module, "weight_g") and hasattr(module, "weight_v") and not module.weight.is_leaf:
            module.weight = module.weight.detach()
    return model
