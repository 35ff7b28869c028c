"""Log-mel filterbank front end: a cheap stand-in for wav2vec 2.0's waveform convolutions.

On a CPU the waveform conv stack is ~70% of a small wav2vec2 model's FLOPs; 80 log-mel bins
at a 10 ms hop followed by one or two strided 1-D convolutions give the Transformer the same
20 ms frame rate for a small fraction of that cost.
"""
from typing import List, Tuple

import torch
import torch.nn as nn
import torchaudio


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
        layers, in_dim = [], n_mels
        for dim, kernel, stride in conv_layers:
            layers += [nn.Conv1d(in_dim, dim, kernel, stride), nn.GELU()]
            in_dim = dim
        self.convs = nn.Sequential(*layers)

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
