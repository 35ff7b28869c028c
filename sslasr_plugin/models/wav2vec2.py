"""wav2vec 2.0 with a choice of front end: fairseq's waveform convolutions or log-mel + convs."""
from dataclasses import dataclass, field

import torch
from fairseq.dataclass import ChoiceEnum
from fairseq.models import register_model
from fairseq.models.wav2vec.wav2vec2 import Wav2Vec2Config, Wav2Vec2Model

from .frontend import LogMelFrontend

FRONTEND_CHOICES = ChoiceEnum(["waveform", "fbank"])


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


@register_model("sslasr_wav2vec2", dataclass=SslAsrWav2Vec2Config)
class SslAsrWav2Vec2Model(Wav2Vec2Model):
    """fairseq's Wav2Vec2Model; with frontend=fbank its feature extractor is LogMelFrontend."""

    def __init__(self, cfg: SslAsrWav2Vec2Config):
        check_channel_masking(cfg)
        super().__init__(cfg)
        if cfg.frontend == "fbank":
            self.feature_extractor = LogMelFrontend(eval(cfg.conv_feature_layers), cfg.fbank_mels)

    def remove_pretraining_modules(self, last_layer=None):
        if not self.cfg.keep_pretraining_modules:
            super().remove_pretraining_modules(last_layer)

    def _get_feat_extract_output_lengths(self, input_lengths: torch.LongTensor):
        if self.cfg.frontend == "fbank":
            input_lengths = self.feature_extractor.num_frames(input_lengths)
        return super()._get_feat_extract_output_lengths(input_lengths)
