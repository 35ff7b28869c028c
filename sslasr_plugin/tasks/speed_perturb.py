"""The ``task.speed_perturb`` option of every plugin task: the training split's audio (both
streams of the two-stream tasks) is speed-perturbed, validation and test splits never.

    fairseq-hydra-train ... task.speed_perturb=[0.9,1.0,1.1]
"""
from dataclasses import dataclass, field
from typing import List

from fairseq.dataclass import FairseqDataclass
from omegaconf import II

from ..data.speed_perturb import speed_perturbed


@dataclass
class SpeedPerturbConfig(FairseqDataclass):
    speed_perturb: List[float] = field(
        default_factory=list,
        metadata={"help": "speed perturbation of the training audio: per utterance and epoch a factor drawn from "
                  "this list (Kaldi/ESPnet/icefall: [0.9,1.0,1.1]); frame labels are stretched with the audio; "
                  "[]: off"},
    )
    seed: int = II("common.seed")
    persistent_workers: bool = field(
        default=False,
        metadata={"help": "keep the data loader's workers between epochs (fairseq's get_batch_iterator reads "
                  "this; its default is true).  Off: speed-perturbed and two-stream data get a new iterator every "
                  "epoch, and the persistent workers of the old one live on until garbage collection, 1-2 GB "
                  "each (one lowres run held 11 of them, 13 GB)"},
    )


class SpeedPerturbTask:
    """Mixin of the plugin's tasks: ``speed_perturbed`` wraps a training dataset as the config asks."""

    def speed_perturbed(self, dataset):
        return speed_perturbed(dataset, self.cfg.speed_perturb, self.cfg.seed)
