"""wav2vec 2.0 with a choice of front end: fairseq's waveform convolutions or log-mel + convs."""
from dataclasses import dataclass, field
from typing import Any, Optional

import torch
from fairseq.dataclass import ChoiceEnum
from fairseq.models import register_model
from fairseq.models.wav2vec.wav2vec import Wav2VecConfig, Wav2VecModel
from fairseq.models.wav2vec.wav2vec2 import Wav2Vec2Config, Wav2Vec2Model
from omegaconf import OmegaConf

from .frontend import WAV2VEC_OUTPUTS, LogMelFrontend, Wav2VecFrontend, wav2vec_output_dim

FRONTEND_CHOICES = ChoiceEnum(["waveform", "fbank", "wav2vec"])


@dataclass
class SslAsrWav2Vec2Config(Wav2Vec2Config):
    frontend: FRONTEND_CHOICES = field(
        default="waveform",
        metadata={
            "help": "waveform: fairseq's conv feature encoder (the paper's); fbank: 25 ms/10 ms "
            "log-mel frames, then conv_feature_layers as 1-D convs over them (cheap on CPUs)"
        },
    )
    fbank_mels: int = field(default=80, metadata={"help": "mel bins of the fbank front end"})
    init_encoder: Optional[str] = field(
        default=None,
        metadata={"help": "start the encoder (front end, Transformer, feature norm, mask embedding) from this "
                  "checkpoint: a wav2vec 2.0 or HuBERT pre-training checkpoint (stock or plugin), or a fine-tuned "
                  "sslasr_ctc model; its architecture must match this model's. Read only when training starts"},
    )
    frontend_checkpoint: Optional[str] = field(
        default=None,
        metadata={"help": "frontend=wav2vec: the pre-trained fairseq `wav2vec` checkpoint (wav2vec, CPC-style, "
                  "vq-wav2vec) whose weights initialize the front end"},
    )
    frontend_output: ChoiceEnum(list(WAV2VEC_OUTPUTS)) = field(
        default="context",
        metadata={"help": "frontend=wav2vec: what the front end passes on: the aggregator's context vectors, the "
                  "conv features, or vq-wav2vec's quantized features"},
    )
    frontend_freeze: bool = field(
        default=True,
        metadata={"help": "frontend=wav2vec: keep the pre-trained wav2vec model fixed (wav2vec's paper trains its "
                  "acoustic model on frozen features); the convs after it always learn"},
    )
    frontend_args: Optional[Any] = field(
        default=None,
        metadata={"help": "frontend=wav2vec: the wav2vec model's config, copied from frontend_checkpoint when "
                  "training starts (so that fine-tuned checkpoints rebuild without it)"},
    )
    keep_pretraining_modules: bool = field(
        default=False,
        metadata={"help": "keep the contrastive-loss modules (projections, quantizer, mask embedding) when "
                  "the model becomes a CTC encoder: joint CPC + CTC training needs both losses"},
    )


def check_channel_masking(cfg: Wav2Vec2Config) -> None:
    """fairseq's static channel masking draws int(p * C / length + U[0,1)) masks with no minimum,
    and raises "this should never happens" whenever that is 0: refuse such configs up front."""
    if cfg.mask_channel_prob <= 0 or cfg.mask_channel_selection != "static":
        return
    channels = eval(cfg.conv_feature_layers)[-1][0] if cfg.mask_channel_before else cfg.encoder_embed_dim
    expected = cfg.mask_channel_prob * channels / cfg.mask_channel_length
    if expected < 1:
        raise ValueError(
            f"mask_channel_prob * channels / mask_channel_length = {cfg.mask_channel_prob} * {channels} / "
            f"{cfg.mask_channel_length} = {expected:.2f} < 1: fairseq's channel masking then fails at random "
            "('this should never happens'); raise mask_channel_prob or lower mask_channel_length"
        )


def build_wav2vec_frontend(cfg: SslAsrWav2Vec2Config) -> Wav2VecFrontend:
    if cfg.frontend_args is None:
        raise ValueError("frontend=wav2vec needs the wav2vec model's config in frontend_args; set "
                         "model.encoder.frontend_checkpoint (sslasr_ctc copies it from there)")
    wav2vec_cfg = OmegaConf.merge(OmegaConf.structured(Wav2VecConfig), cfg.frontend_args)
    model = Wav2VecModel(wav2vec_cfg)
    return Wav2VecFrontend(model, eval(cfg.conv_feature_layers), cfg.frontend_output,
                           eval(wav2vec_cfg.conv_feature_layers), wav2vec_output_dim(wav2vec_cfg, cfg.frontend_output),
                           freeze=cfg.frontend_freeze)


@register_model("sslasr_wav2vec2", dataclass=SslAsrWav2Vec2Config)
class SslAsrWav2Vec2Model(Wav2Vec2Model):
    """fairseq's Wav2Vec2Model; with frontend=fbank its feature extractor is LogMelFrontend."""

    def __init__(self, cfg: SslAsrWav2Vec2Config):
        check_channel_masking(cfg)
        super().__init__(cfg)
        if cfg.frontend == "fbank":
            self.feature_extractor = LogMelFrontend(eval(cfg.conv_feature_layers), cfg.fbank_mels)
        elif cfg.frontend == "wav2vec":
            self.feature_extractor = build_wav2vec_frontend(cfg)

    def remove_pretraining_modules(self, last_layer=None):
        if not self.cfg.keep_pretraining_modules:
            super().remove_pretraining_modules(last_layer)

    def _get_feat_extract_output_lengths(self, input_lengths: torch.LongTensor):
        if self.cfg.frontend in ("fbank", "wav2vec"):
            input_lengths = self.feature_extractor.num_frames(input_lengths)
        return super()._get_feat_extract_output_lengths(input_lengths)


ENCODER_PREFIXES = ("feature_extractor.", "post_extract_proj.", "layer_norm.", "encoder.", "mask_emb")
_CTC_PREFIX = "w2v_encoder.w2v_model."


def load_encoder_weights(model: torch.nn.Module, path: str) -> int:
    """Copy the encoder weights (ENCODER_PREFIXES) of the checkpoint at ``path`` into ``model``;
    wav2vec 2.0 and HuBERT name them alike.  Returns the number of tensors copied."""
    from ..checkpoint import load_checkpoint

    source = load_checkpoint(path)["model"]
    if any(k.startswith(_CTC_PREFIX) for k in source):  # a fine-tuned CTC model's encoder
        source = {k[len(_CTC_PREFIX):]: v for k, v in source.items() if k.startswith(_CTC_PREFIX)}
    target = {k: v for k, v in model.state_dict().items() if k.startswith(ENCODER_PREFIXES)}
    missing = sorted(k for k in target if k not in source)
    mismatched = sorted(k for k in target if k in source and source[k].shape != target[k].shape)
    if missing or mismatched:
        detail = (f"{len(missing)} tensors missing (e.g. {', '.join(missing[:3])})" if missing else
                  f"{len(mismatched)} of other shapes (e.g. {mismatched[0]}: {tuple(source[mismatched[0]].shape)} "
                  f"there, {tuple(target[mismatched[0]].shape)} here)")
        raise ValueError(f"model.init_encoder={path}: its encoder does not fit this model ({detail}); give the "
                         "model the checkpoint's architecture (front end, layers, dimensions)")
    model.load_state_dict({k: source[k] for k in target}, strict=False)
    return len(target)
