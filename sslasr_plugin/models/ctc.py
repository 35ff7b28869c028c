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
from fairseq import checkpoint_utils
from fairseq.models import register_model
from fairseq.models.hubert.hubert_asr import HubertEncoder
from fairseq.models.wav2vec.wav2vec2_asr import Wav2Vec2CtcConfig, Wav2VecCtc, Wav2VecEncoder
from omegaconf import OmegaConf, open_dict

from ..checkpoint import load_checkpoint
from .wav2vec2 import SslAsrWav2Vec2Config

HUBERT_MODELS = ("hubert", "sslasr_hubert")

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


def scratch_w2v_args(cfg: SslAsrCtcConfig, frontend_state: Optional[dict] = None):
    """The w2v_args (pre-training task + model config) of a randomly initialized encoder
    (with frontend=wav2vec: its front end's config taken from ``frontend_state``)."""
    model = OmegaConf.merge(OmegaConf.structured(SslAsrWav2Vec2Config), cfg.encoder)
    if frontend_state is not None:
        # Resolved: the wav2vec config refers to the pre-training criterion (infonce).
        model.frontend_args = OmegaConf.to_container(OmegaConf.create(frontend_state["cfg"]), resolve=True)["model"]
    for name in _SHARED_OPTIONS:
        model[name] = cfg[name]
    model.encoder_layerdrop = cfg.layerdrop
    model._name = "sslasr_wav2vec2"
    task = {"_name": "audio_pretraining", "data": cfg.data, "normalize": cfg.normalize}
    return OmegaConf.create({"task": task, "model": OmegaConf.to_container(model)})


class SslAsrEncoder(Wav2VecEncoder):
    def __init__(self, cfg: SslAsrCtcConfig, output_size: Optional[int] = None):
        frontend_state = pretrained = None
        if cfg.w2v_path is None and cfg.w2v_args is None:  # a new model (not a reload)
            if cfg.encoder.frontend == "wav2vec":
                frontend_state = load_wav2vec_frontend_checkpoint(cfg.encoder.frontend_checkpoint)
            cfg.w2v_args = scratch_w2v_args(cfg, frontend_state)
        elif cfg.w2v_args is None and cfg.encoder.keep_pretraining_modules:
            # Joint training from a pre-trained model: its contrastive modules too.
            pretrained = checkpoint_utils.load_checkpoint_to_cpu(cfg.w2v_path)
            if _model_name(pretrained) != "sslasr_wav2vec2":
                raise ValueError(f"model.encoder.keep_pretraining_modules=true (joint training) needs an sslasr_wav2vec2 "
                                 f"pre-training checkpoint as model.w2v_path; {cfg.w2v_path} is "
                                 f"{_model_name(pretrained)!r}")
            w2v_args = pretrained["cfg"]
            with open_dict(w2v_args):
                w2v_args.model.keep_pretraining_modules = True
                w2v_args.criterion = None
                w2v_args.lr_scheduler = None
            cfg.w2v_args = w2v_args
        super().__init__(cfg, output_size)
        if pretrained is not None:
            self.w2v_model.load_state_dict(pretrained["model"], strict=True)
        if frontend_state is not None:
            # The wav2vec model's pre-training heads are not part of the front end.
            weights = {k: v for k, v in frontend_state["model"].items()
                       if not k.startswith(("wav2vec_predictions.", "project_features."))}
            self.w2v_model.feature_extractor.wav2vec.load_state_dict(weights, strict=True)


def load_wav2vec_frontend_checkpoint(path: Optional[str]) -> dict:
    """A fairseq ``wav2vec`` pre-training checkpoint (safe loader), checked to be one."""
    if not path:
        raise ValueError("model.encoder.frontend=wav2vec needs model.encoder.frontend_checkpoint: a checkpoint "
                         "of examples/ssl/{cpc,wav2vec,vq_wav2vec_gumbel,vq_wav2vec_kmeans}.yaml")
    state = load_checkpoint(path)
    name = _model_name(state)
    if name != "wav2vec" or state.get("cfg") is None:
        raise ValueError(f"{path} is a {name!r} checkpoint; model.encoder.frontend=wav2vec takes fairseq "
                         "`wav2vec` models (wav2vec, CPC, vq-wav2vec). For wav2vec 2.0 or HuBERT checkpoints "
                         "set model.w2v_path instead")
    return state


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
            hubert = cfg.w2v_args.model._name in HUBERT_MODELS
        elif cfg.w2v_path is not None:  # starting from a pre-trained checkpoint
            state = _peek_checkpoint(cfg.w2v_path)
            hubert = _model_name(state) in HUBERT_MODELS
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
