"""Encoder + frame-level head, trained on frame pseudo-labels (CSL and its CE-PL baseline).

The encoder is sslasr_wav2vec2 (either front end); the head is CSL's projection network
(Linear-ReLU-Linear, L2-normalized output; the paper: 1024 hidden, 128 out) or CE-PL's linear
classifier over the pseudo-label classes.  For CTC fine-tuning the head is dropped, like the
pre-training modules of wav2vec 2.0: point examples/ctc/finetune_w2v.yaml's model.w2v_path at
the checkpoint.
"""
from dataclasses import dataclass, field

import torch.nn as nn
import torch.nn.functional as F
from fairseq.dataclass import ChoiceEnum
from fairseq.models import register_model

from .wav2vec2 import SslAsrWav2Vec2Config, SslAsrWav2Vec2Model


@dataclass
class SslAsrFrameModelConfig(SslAsrWav2Vec2Config):
    head: ChoiceEnum(["projection", "classifier"]) = field(
        default="projection", metadata={"help": "projection: CSL's contrastive head; classifier: CE-PL"}
    )
    projection_hidden_dim: int = field(default=1024, metadata={"help": "hidden units of the projection (paper: 1024)"})
    projection_dim: int = field(default=128, metadata={"help": "projection output size (paper: 128)"})
    num_classes: int = field(
        default=0, metadata={"help": "pseudo-label classes of the classifier; 0: from the task's dictionary"}
    )


@register_model("sslasr_frame_model", dataclass=SslAsrFrameModelConfig)
class SslAsrFrameModel(SslAsrWav2Vec2Model):
    def __init__(self, cfg: SslAsrFrameModelConfig):
        super().__init__(cfg)
        super().remove_pretraining_modules()  # no quantizer or wav2vec 2.0 targets here
        d = cfg.encoder_embed_dim
        if cfg.head == "projection":
            self.head = nn.Sequential(
                nn.Linear(d, cfg.projection_hidden_dim), nn.ReLU(), nn.Linear(cfg.projection_hidden_dim, cfg.projection_dim)
            )
        else:
            if cfg.num_classes <= 0:
                raise ValueError("the classifier head needs num_classes > 0 (the task sets it from dict.{label}.txt)")
            self.head = nn.Linear(d, cfg.num_classes)

    @classmethod
    def build_model(cls, cfg: SslAsrFrameModelConfig, task=None):
        if cfg.head == "classifier" and cfg.num_classes <= 0:
            # Kept in the config (and so in checkpoints): reloading never needs the label files.
            cfg.num_classes = len(task.dictionaries[0])
        return cls(cfg)

    def encoder_frames(self, source, padding_mask=None, mask=None):
        """Encoder outputs (B, T, C) and the padding mask.  ``mask=None`` masks in training only:
        fairseq's ``apply_mask`` ignores the training mode, and validation (checkpoint selection)
        must see the input unmasked."""
        res = self.extract_features(source, padding_mask, mask=self.training if mask is None else mask)
        return res["x"], res["padding_mask"]

    def head_outputs(self, x):
        """The head on encoder frames (..., C), L2-normalized for the projection.  Frame-wise, so
        CSL projects only the frames its loss samples (one per segment)."""
        out = self.head(x)
        if self.cfg.head == "projection":
            out = F.normalize(out.float(), dim=-1)
        return out

    def frame_outputs(self, source, padding_mask=None, mask=None):
        """Head outputs (B, T, D) of every frame, and the padding mask."""
        x, padding_mask = self.encoder_frames(source, padding_mask, mask)
        return self.head_outputs(x), padding_mask

    def remove_pretraining_modules(self, last_layer=None):
        super().remove_pretraining_modules(last_layer)
        self.head = None
