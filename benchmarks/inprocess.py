"""Shared by the step-time benchmarks: fairseq Trainers of several configs in one process,
stepping the same batches in turn.

Each arm is built as fairseq-hydra-train builds it (hydra compose of the example config and its
overrides, fairseq's defaults, ``tasks.setup_task``, ``build_model``, ``build_criterion``,
``Trainer``), and one update is ``trainer.train_step([sample])``: forward, backward, the task's
optimizer step with clipping, logging aggregation, exactly what a training run does between two
batches.  The arms step batch by batch in a rotating order, so slow drifts of the machine (other
processes, clock) fall on every arm alike, and each arm gets the same audio: the arms' own
datasets are indexed by manifest row, and every arm collates the same rows.
"""
import argparse
import logging
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

REPO = Path(__file__).resolve().parent.parent
Arm = Tuple[str, str, Sequence[str]]  # config dir, config name, overrides


def build_trainer(arm: Arm, data: str, seed: int = 1):
    """(trainer, train dataset) of ``arm`` on ``data``, as fairseq-hydra-train builds them."""
    from fairseq import tasks, utils
    from fairseq.dataclass.initialize import add_defaults, hydra_init
    from fairseq.dataclass.utils import omegaconf_no_object_check
    from fairseq.trainer import Trainer
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    config_dir, name, overrides = arm
    # registered before the config is composed, so that fairseq fills in our dataclasses' defaults
    utils.import_user_module(argparse.Namespace(user_dir=str(REPO / "sslasr_plugin")))
    hydra_init(name)
    with initialize_config_dir(config_dir=str(REPO / config_dir), version_base="1.1"):
        cfg = compose(config_name=name, overrides=[f"common.user_dir={REPO / 'sslasr_plugin'}", f"task.data={data}",
                                                   "checkpoint.no_save=true", "dataset.disable_validation=true",
                                                   "dataset.num_workers=0", *overrides])
    add_defaults(cfg)
    with omegaconf_no_object_check():
        cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))
    OmegaConf.set_struct(cfg, True)
    utils.import_user_module(cfg.common)
    np.random.seed(seed)
    utils.set_torch_seed(seed)
    task = tasks.setup_task(cfg.task)
    task.load_dataset(cfg.dataset.train_subset, combine=False, epoch=1)
    trainer = Trainer(cfg, task, task.build_model(cfg.model), task.build_criterion(cfg.criterion))
    trainer.begin_epoch(1)
    return trainer, task.dataset(cfg.dataset.train_subset)


def quiet() -> None:
    """Only this script's lines and warnings of consequence on stderr (fairseq logs every build)."""
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")


def rows_to_sample(dataset, mode=None):
    """batch of manifest rows -> the arm's own collated sample (a joint task's dataset: through
    its ``mode`` stream)."""
    def collate(rows):
        index = dataset.stream_indices(mode, rows) if mode else rows
        return dataset.collater([dataset[int(i)] for i in index])
    return collate


def spread(batches: List[List[int]], k: int) -> List[List[int]]:
    """k batches evenly spread over the list (length-sorted batches: short, middle and long)."""
    picks = np.linspace(0, len(batches) - 1, min(k, len(batches))).round().astype(int)
    return [list(batches[i]) for i in dict.fromkeys(picks)]


def time_steps(trainers: Dict[str, object], samples: Dict[str, Callable[[int], dict]], n: int,
               warmup: int = 2, log: Optional[Callable[[str], None]] = None) -> Dict[str, List[float]]:
    """Seconds of ``trainer.train_step`` per batch for each arm: batch i is ``samples[arm](i)``
    for every arm; arms take turns in a rotating order; the first ``warmup`` batches (optimizer
    creation, allocator warm-up) are stepped but not counted."""
    from fairseq import metrics

    names = list(trainers)
    seconds = {arm: [] for arm in names}
    for i in range(n):
        for j in range(len(names)):
            arm = names[(i + j) % len(names)]
            sample = samples[arm](i)
            t0 = time.perf_counter()
            with metrics.aggregate("train_inner"):
                trainers[arm].train_step([sample])
            if i >= warmup:
                seconds[arm].append(time.perf_counter() - t0)
        if log and i >= warmup:
            log(f"batch {i + 1}/{n}: " + ", ".join(f"{a} {seconds[a][-1] * 1e3:.0f} ms" for a in names))
    return seconds


def summary(seconds: Dict[str, List[float]], reference: str) -> List[Tuple[str, float, float, float]]:
    """(arm, median ms per update, ratio of the totals to the reference, median per-batch ratio)."""
    ref = seconds[reference]
    rows = []
    for arm, s in seconds.items():
        rows.append((arm, statistics.median(s) * 1e3, sum(s) / sum(ref),
                     statistics.median(a / b for a, b in zip(s, ref))))
    return rows


def stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
