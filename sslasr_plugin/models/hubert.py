"""HuBERT with the plugin's choice of front end: fairseq's waveform convolutions or log-mel + convs.

fairseq's HubertModel ties the label rate to its waveform convolutions (feat2tar_ratio = label
rate x product of the conv strides / sample rate) and derives frame padding by reshaping the
sample mask; with the log-mel front end both come from the front end's real frame count instead.
"""
from dataclasses import dataclass, field

import torch
from fairseq.models import register_model
from fairseq.models.hubert.hubert import HubertConfig, HubertModel

from .frontend import LogMelFrontend, conv_output_lengths
from .wav2vec2 import FRONTEND_CHOICES


@dataclass
class SslAsrHubertConfig(HubertConfig):
    frontend: FRONTEND_CHOICES = field(
        default="waveform",
        metadata={"help": "waveform: fairseq's conv feature encoder; fbank: 25 ms/10 ms log-mel frames, then "
                  "conv_feature_layers as 1-D convs over them (cheap on CPUs)"},
    )
    fbank_mels: int = field(default=80, metadata={"help": "mel bins of the fbank front end"})


@register_model("sslasr_hubert", dataclass=SslAsrHubertConfig)
class SslAsrHubertModel(HubertModel):
    def __init__(self, cfg: SslAsrHubertConfig, task_cfg, dictionaries):
        if cfg.frontend not in ("waveform", "fbank"):
            raise ValueError(f"sslasr_hubert: frontend={cfg.frontend!r}; HuBERT takes waveform or fbank")
        super().__init__(cfg, task_cfg, dictionaries)
        self._conv_layers = eval(cfg.conv_feature_layers)
        if cfg.frontend == "fbank":
            self.feature_extractor = LogMelFrontend(self._conv_layers, cfg.fbank_mels)
            samples_per_frame = self.feature_extractor.hop_length
            for _, _, stride in self._conv_layers:
                samples_per_frame *= stride
            self.feat2tar_ratio = cfg.label_rate * samples_per_frame / task_cfg.sample_rate

    @classmethod
    def build_model(cls, cfg: SslAsrHubertConfig, task):
        return cls(cfg, task.cfg, task.dictionaries)

    def num_frames(self, num_samples: torch.Tensor) -> torch.Tensor:
        """Encoder frames for waveforms of ``num_samples`` samples."""
        if isinstance(self.feature_extractor, LogMelFrontend):
            return conv_output_lengths(self.feature_extractor.num_frames(num_samples), self._conv_layers)
        return conv_output_lengths(num_samples, self._conv_layers)

    def forward_padding_mask(self, features: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
        if not isinstance(self.feature_extractor, LogMelFrontend):
            return super().forward_padding_mask(features, padding_mask)
        frames = self.num_frames((~padding_mask).sum(1))
        return torch.arange(features.size(1), device=features.device)[None, :] >= frames[:, None]
