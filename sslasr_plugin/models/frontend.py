"""Front ends for the wav2vec 2.0 / HuBERT Transformer, in place of fairseq's waveform convolutions.

LogMelFrontend: on a CPU the waveform conv stack is ~70% of a small wav2vec2 model's FLOPs; 80
log-mel bins at a 10 ms hop followed by one or two strided 1-D convolutions give the Transformer
the same 20 ms frame rate for a small fraction of that cost.

Wav2VecFrontend: a pre-trained fairseq ``wav2vec`` model (wav2vec, CPC-style, vq-wav2vec) as the
feature extractor, followed by the same strided convolutions: how the first generation of
self-supervised encoders is fine-tuned with CTC here.
"""
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torchaudio


def conv_stack(in_dim: int, conv_layers: List[Tuple[int, int, int]]) -> nn.Sequential:
    """Strided 1-D convolutions (dim, kernel, stride), no padding, each followed by GELU."""
    layers = []
    for dim, kernel, stride in conv_layers:
        layers += [nn.Conv1d(in_dim, dim, kernel, stride), nn.GELU()]
        in_dim = dim
    return nn.Sequential(*layers)


def conv_output_lengths(lengths: torch.Tensor, conv_layers: List[Tuple[int, int, int]]) -> torch.Tensor:
    """Output lengths of unpadded strided convolutions (kernel, stride) over ``lengths`` frames."""
    for _, kernel, stride in conv_layers:
        lengths = torch.div(lengths - kernel, stride, rounding_mode="floor") + 1
    return lengths.clamp(min=0)


class LogMelFrontend(nn.Module):
    """Waveform (B, S) -> log-mel (B, n_mels, F) -> strided convs + GELU -> (B, C, T)."""

    def __init__(
        self,
        conv_layers: List[Tuple[int, int, int]],
        n_mels: int = 80,
        sample_rate: int = 16000,
        win_length: int = 400,
        hop_length: int = 160,
    ):
        super().__init__()
        self.win_length, self.hop_length = win_length, hop_length
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=win_length, win_length=win_length,
            hop_length=hop_length, n_mels=n_mels, center=False,
        )
        self.convs = conv_stack(n_mels, conv_layers)

    def _apply(self, fn, *args, **kwargs):
        # fairseq's --bf16/--fp16 cast every buffer, the STFT window and mel filters too: keep
        # those in fp32 (the cast happens once, not in every forward).
        super()._apply(fn, *args, **kwargs)
        self.mel.float()
        return self

    def num_frames(self, num_samples: torch.Tensor) -> torch.Tensor:
        """Number of mel frames for waveforms of ``num_samples`` samples (center=False)."""
        frames = torch.div(num_samples - self.win_length, self.hop_length, rounding_mode="floor") + 1
        return frames.clamp(min=0)

    def forward(self, source: torch.Tensor) -> torch.Tensor:
        # The spectrogram is computed in fp32 even when the model runs in bf16/fp16.
        with torch.autocast(device_type=source.device.type, enabled=False):
            feats = torch.log(self.mel(source.float()) + 1e-6)
        return self.convs(feats.to(self.convs[0].weight.dtype))


WAV2VEC_OUTPUTS = ("context", "features", "quantized")


class Wav2VecFrontend(nn.Module):
    """A fairseq ``wav2vec`` model (its conv encoder, quantizer and aggregator; not its
    prediction heads) -> strided convs + GELU -> (B, C, T).

    ``output``: ``context`` the aggregator's output (CPC's c_t; the features wav2vec's paper
    feeds to the acoustic model), ``features`` the conv encoder's z_t, ``quantized`` vq-wav2vec's
    codewords.  The wav2vec models take no padding mask; padded samples only reach the frames
    past each utterance's end, which the Transformer masks.
    """

    def __init__(self, wav2vec_model: nn.Module, conv_layers: List[Tuple[int, int, int]], output: str,
                 wav2vec_conv_layers: List[Tuple[int, int, int]], out_dim: int, freeze: bool = True):
        super().__init__()
        self.freeze = freeze
        if output not in WAV2VEC_OUTPUTS:
            raise ValueError(f"frontend_output={output!r}: expected one of {', '.join(WAV2VEC_OUTPUTS)}")
        if output == "quantized" and wav2vec_model.vector_quantizer is None:
            raise ValueError("frontend_output=quantized needs a vq-wav2vec checkpoint (model.vq_type gumbel or "
                             "kmeans); this wav2vec model has no quantizer: use context or features")
        self.output = output
        self.wav2vec = wav2vec_model
        self.wav2vec.wav2vec_predictions = None  # the pre-training heads: not part of the encoder
        self.wav2vec.project_features = None
        self.wav2vec_conv_layers = wav2vec_conv_layers
        self.convs = conv_stack(out_dim, conv_layers)
        if freeze:  # not in the optimizer at all
            self.wav2vec.requires_grad_(False)

    def num_frames(self, num_samples: torch.Tensor) -> torch.Tensor:
        """wav2vec frames (10 ms with fairseq's strides) for ``num_samples`` samples."""
        return conv_output_lengths(num_samples, self.wav2vec_conv_layers)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze:  # frozen: no dropout either
            self.wav2vec.eval()
        elif self.wav2vec.vector_quantizer is not None:  # codewords by argmax, never Gumbel samples
            self.wav2vec.vector_quantizer.eval()
        return self

    def wav2vec_output(self, source: torch.Tensor) -> torch.Tensor:
        model = self.wav2vec
        x = model.feature_extractor(source)
        if model.vector_quantizer is not None and self.output != "features":
            x = model.vector_quantizer(x, produce_targets=False)["x"]
        if self.output == "context":
            x = model.feature_aggregator(x)
        return x

    def forward(self, source: torch.Tensor) -> torch.Tensor:
        if self.freeze:
            with torch.no_grad():
                x = self.wav2vec_output(source)
        else:
            x = self.wav2vec_output(source)
        return self.convs(x)


def wav2vec_output_dim(model_cfg, output: str) -> int:
    """Channels of a wav2vec model's ``output`` (see Wav2VecFrontend)."""
    if output == "context":
        return model_cfg.gru_dim if model_cfg.aggregator == "gru" else eval(model_cfg.conv_aggregator_layers)[-1][0]
    embed = eval(model_cfg.conv_feature_layers)[-1][0]
    if output == "quantized" and model_cfg.vq_dim > 0:
        return model_cfg.vq_dim
    return embed
