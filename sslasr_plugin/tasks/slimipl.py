"""Continuous pseudo-labeling: slimIPL (Likhomanenko et al. 2021) with hard labels, and soft labels
(Likhomanenko et al. 2022), for CTC models.

The model labels unlabeled audio as it trains (greedy CTC or frame distributions, no language
model), through slimIPL's dynamic cache (``data.pl_cache``), whose batches the sampler chooses
ahead (``data.pl_cache_batches``); the EMA model labels with ``ema.store_ema=true``.  While the
cache fills, its reads label and store a batch each and make no update, as flashlight's recipe
(``task.train_while_filling=true``: train on each such batch too).  Labeling statistics are
logged and watched by a collapse detector (``decoding.online_labels``), with ``pl_unlabeled_h``,
the hours of unlabeled audio labeled at least once so far, and with several unlabeled subsets
(``task.unlabeled_subsets='a,b'``) the labels' CER on each (``pl_cer_a``, ``pl_cer_b``).  The labels
may also be fixed ones from a file (``task.pl_decoder=file``: another model's, decoded offline) or
the true transcripts (``oracle``, a ceiling measurement).  The cache is saved in checkpoints, so
a resumed run makes the same decisions.  The cache's workings are in docs/design.md ("slimIPL's cache").

    fairseq-hydra-train --config-dir examples/slimipl --config-name slimipl \\
        common.user_dir=sslasr_plugin task.data=$PWD/data/demo checkpoint.save_dir=$PWD/exp/slimipl
"""
import bisect
import hashlib
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from fairseq import metrics
from fairseq.data.audio.raw_audio_dataset import FileAudioDataset
from fairseq.dataclass import ChoiceEnum
from fairseq.distributed import utils as distributed_utils
from fairseq.modules import FairseqDropout
from fairseq.tasks import register_task
from omegaconf import II

from ..batch_modes import PL, SUP, UNSUP, batch_mode
from ..data.alternating_batches import Schedule, epoch_batches
from ..data.pl_cache import PseudoLabelCache
from ..data.pl_cache_batches import CacheBatches, PseudoLabelingDataset
from sslasr_data.validate import validate_split
from ..decoding.ctc import greedy_decode
from ..decoding.lm import LmBeamDecoder
from ..decoding.online_labels import CollapseDetector, LabelStats, label_batch
from ..parallel import rank_and_world
from .nonfinite import skip_step, zero_loss
from .two_stream import TwoStreamConfig, TwoStreamTask

logger = logging.getLogger(__name__)

PSEUDO_LABELS = ChoiceEnum(["hard", "soft"])
PL_DECODERS = ChoiceEnum(["greedy", "lm", "oracle", "file"])
_STAT = "pl_stat_"
_SUB = "pl_sub_"  # per unlabeled subset (several of them): oracle errors and tokens, "pl_sub_errors:<subset>"


@dataclass
class SlimIplConfig(TwoStreamConfig):
    unsup_on_labeled: bool = field(
        default=False, metadata={"help": "also pseudo-label the labeled training audio"}
    )
    warmup_updates: int = field(
        default=0, metadata={"help": "supervised updates before pseudo-labeling starts (slimIPL's M: 20k)"}
    )
    sup_updates: int = field(default=1, metadata={"help": "labeled updates per cycle (slimIPL: 1)"})
    unsup_updates: int = field(
        default=4, metadata={"help": "pseudo-labeled updates per cycle (slimIPL: 4 with 100 h, 10 with 10 h)"}
    )
    cache_size: int = field(default=100, metadata={"help": "batches in the cache (slimIPL: 100 or 1000)"})
    cache_replace_prob: float = field(
        default=0.1, metadata={"help": "probability that a used cache entry is replaced by a new batch (slimIPL: 0.1)"}
    )
    train_while_filling: bool = field(
        default=False,
        metadata={"help": "while the cache fills (its first cache_size reads), also train on each newly labeled "
                  "batch (naive IPL for those reads); false: label and store only, no update, as flashlight's "
                  "slimIPL (its update counter, and so the LR schedule, still advances)"},
    )
    pseudo_labels: PSEUDO_LABELS = field(
        default="hard", metadata={"help": "hard: greedy transcripts (CTC); soft: per-frame distributions"}
    )
    pl_decoder: PL_DECODERS = field(
        default="greedy", metadata={"help": "how hard pseudo-labels are decoded: greedy (slimIPL), or lm: beam "
                                            "search with task.kenlm_model (+ task.lexicon, word_score, ...); "
                                            "oracle: the true transcripts of task.oracle_labels instead (a "
                                            "measurement: the ceiling perfect labels reach with the same schedule); "
                                            "file: fixed labels from task.pl_labels (offline pseudo-labels of "
                                            "another model, e.g. a better teacher's), the same schedule"})
    pl_beam: int = field(default=50, metadata={"help": "beam size of LM pseudo-labeling"})
    pl_lm_weight: float = field(default=2.0, metadata={"help": "LM weight of LM pseudo-labeling"})
    pl_dropout: Optional[float] = field(
        default=0.1, metadata={"help": "dropout above this is lowered to it when pseudo-labeling starts; null: keep"}
    )
    pl_layerdrop: Optional[float] = field(
        default=0.1, metadata={"help": "layerdrop above this is lowered to it when pseudo-labeling starts"}
    )
    oracle_labels: Optional[str] = field(
        default=None,
        metadata={"help": "extension of the unlabeled audio's true transcripts ({subset}.{ext}), for logging "
                  "pl_cer (the synthetic corpus writes them); trained on only with task.pl_decoder=oracle"},
    )
    pl_labels: Optional[str] = field(
        default=None,
        metadata={"help": "extension of fixed pseudo-labels of the unlabeled audio ({subset}.{ext}, one line per "
                  "manifest row, spelled as the .ltr transcripts), trained on with task.pl_decoder=file; pl_cer "
                  "stays measured against task.oracle_labels"},
    )
    collapse_min_ratio: float = field(
        default=0.5,
        metadata={"help": "collapse: pseudo-labels' tokens per second below this fraction of the labeled data's"},
    )
    collapse_window: int = field(default=10, metadata={"help": "labeled batches the collapse detector looks at"})
    stop_on_collapse: bool = field(default=False, metadata={"help": "stop training when a collapse is detected"})
    seed: int = II("common.seed")


@register_task("sslasr_slimipl", dataclass=SlimIplConfig)
class SlimIplTask(TwoStreamTask):
    cfg: SlimIplConfig

    def __init__(self, cfg: SlimIplConfig):
        if len(set(cfg.update_freq)) > 1:
            raise ValueError(f"task sslasr_slimipl needs one optimization.update_freq for every epoch (got "
                             f"{list(cfg.update_freq)}): the cache's reads are numbered as update x update_freq; "
                             f"set optimization.update_freq=[{cfg.update_freq[0]}]")
        super().__init__(cfg)
        self.cache = PseudoLabelCache(cfg.cache_size, cfg.cache_replace_prob, cfg.seed)
        self.detector: Optional[CollapseDetector] = None
        self._oracle: List[Optional[List[int]]] = []  # per unlabeled utterance, in stream order
        self._fixed: List[Optional[List[int]]] = []  # task.pl_labels's, the same order (pl_decoder=file)
        self._subsets: List[Tuple[str, int]] = []  # (unlabeled subset, its first utterance in the stream)
        self._dropout_lowered = False
        self._cache_batches: Optional[CacheBatches] = None
        self._reads = (None, 0, 0)  # (update_num, filling reads, trained reads) of the update being accumulated
        self._read_ids = ""  # chained digest of the ids this rank's reads labeled and trained on (rank 0's is saved)
        self._resumed_batches: Optional[Dict[str, Any]] = None  # a checkpoint's unlabeled batches, until checked
        self._ever_labeled = torch.zeros(0, dtype=torch.bool)  # per unlabeled utterance: labeled at least once
        self._unsup_seconds = torch.zeros(0, dtype=torch.float64)  # per unlabeled utterance: its duration
        if cfg.pl_decoder == "oracle" and (cfg.pseudo_labels != "hard" or not cfg.oracle_labels):
            raise ValueError("task.pl_decoder=oracle trains on the unlabeled audio's true transcripts: it needs "
                             "task.pseudo_labels=hard and task.oracle_labels=<their extension, e.g. ltr>")
        if cfg.pl_decoder == "file" and (cfg.pseudo_labels != "hard" or not cfg.pl_labels):
            raise ValueError("task.pl_decoder=file trains on fixed pseudo-labels: it needs task.pseudo_labels=hard "
                             "and task.pl_labels=<their extension: {subset}.<ext> beside each unlabeled manifest>")
        self._decode = self._labeling_decoder(cfg) if cfg.pl_decoder == "lm" else greedy_decode

    def _labeling_decoder(self, cfg: SlimIplConfig):
        """Beam search with the task's KenLM model for the pseudo-labels (hard labels only)."""
        if cfg.pseudo_labels != "hard" or cfg.kenlm_model is None:
            raise ValueError("task.pl_decoder=lm needs task.pseudo_labels=hard and task.kenlm_model=<KenLM model> "
                             "(python -m data_prep.lm builds one; add task.lexicon=<lexicon> for a word LM)")
        return LmBeamDecoder.from_config(cfg, self.target_dictionary, self._blank, cfg.pl_beam, cfg.pl_lm_weight)

    @staticmethod
    def build_schedule(cfg: SlimIplConfig) -> Schedule:
        return Schedule(cfg.warmup_updates, cfg.unsup_updates, cfg.sup_updates, warmup=SUP)

    @property
    def uses_ema(self) -> bool:
        return True  # fairseq then hands train_step the EMA model when ema.store_ema=true

    # data ------------------------------------------------------------------------------------

    def unlabeled_dataset(self, split: str, check: bool = True):
        """``split``'s audio, whole and padded (labels and audio must stay aligned: no random crops)."""
        if check and self.cfg.check_data:
            validate_split(self.cfg.data, split, labels=None, sample_rate=self.cfg.sample_rate)
        dataset = FileAudioDataset(
            manifest_path=os.path.join(self.cfg.data, f"{split}.tsv"), sample_rate=self.cfg.sample_rate,
            max_sample_size=None, min_sample_size=self.cfg.min_sample_size, pad=True, normalize=self.cfg.normalize,
        )
        self._subsets.append((split, len(self._oracle)))
        self._oracle.extend(self._read_labels(split, dataset, self.cfg.oracle_labels, "oracle"))
        if self.cfg.pl_decoder == "file":
            self._fixed.extend(self._read_labels(split, dataset, self.cfg.pl_labels, "file"))
        return dataset

    def _read_labels(self, split: str, dataset: FileAudioDataset, ext: Optional[str],
                     decoder: str) -> List[Optional[List[int]]]:
        """``split``'s transcripts ``{split}.{ext}``: the true ones (``decoder`` oracle) or fixed
        pseudo-labels (file), encoded; required when task.pl_decoder is ``decoder``."""
        if not ext:
            return [None] * len(dataset)
        path = os.path.join(self.cfg.data, f"{split}.{ext}")
        what = "the true transcripts" if decoder == "oracle" else "the pseudo-labels"
        if not os.path.exists(path):
            if self.cfg.pl_decoder == decoder:
                raise FileNotFoundError(f"task.pl_decoder={decoder} trains on {path}, which does not exist: write "
                                        f"{what} of {split} there (one line per row of {split}.tsv)")
            logger.warning(f"no oracle transcripts {path}: pl_cer is not logged for {split}")
            return [None] * len(dataset)
        with open(path, encoding="utf-8") as f:
            lines = [line for i, line in enumerate(f) if i not in dataset.skipped_indices]
        if len(lines) != len(dataset):
            raise ValueError(f"{path} has {len(lines)} usable lines, {split}.tsv {len(dataset)} utterances: "
                             f"{what} must have one line per manifest row")
        d = self.target_dictionary
        encoded = [d.encode_line(line, append_eos=False, add_if_not_exist=False).tolist() for line in lines]
        if decoder == "file":  # another model's labels, maybe of another dictionary: never trained on as <unk>
            for n, (line, tokens) in enumerate(zip(lines, encoded), 1):
                if d.unk() in tokens:
                    unknown = sorted({w for w in line.split() if d.index(w) == d.unk()})
                    raise ValueError(f"{path}, line {n} (of the usable lines): {' '.join(unknown)} not in the "
                                     f"dictionary {self.cfg.data}/dict.{self.cfg.labels}.txt: spell the labels in its symbols, "
                                     "as the .ltr transcripts")
        return encoded

    def unlabeled_perturbed(self, dataset):
        """The unlabeled audio keeps its speed (``task.speed_perturb`` applies to the labeled audio):
        the cache's batches are chosen ahead from one batch list for every epoch, and a cached
        batch read again in a later epoch must still fit its labels."""
        return dataset

    def two_stream_dataset(self, sup, unsup) -> PseudoLabelingDataset:
        return PseudoLabelingDataset(sup, unsup)

    def epoch_batch_list(self, dataset: PseudoLabelingDataset, batches, epoch: int, seed: int, shards: int,
                         freq: int) -> List[List[int]]:
        """The epoch's batches; an unlabeled update's are those its ``freq`` cache reads need
        (``CacheBatches``: the batch each read trains on, and the one it labels)."""
        def unsup(update_num: int) -> List[List[int]]:
            cached = self._cache_batches  # built at the first unlabeled update (none: no unlabeled audio needed)
            if cached is None or (cached.seed, cached.shards, cached.batches) != (seed, shards, batches[UNSUP]):
                cached = self._cache_batches = CacheBatches(self.cache.decide, batches[UNSUP], seed, shards)
                self._check_resumed_batches()
            return cached.reads(freq * self.schedule.count(UNSUP, update_num), freq, dataset.fresh_offset())

        return epoch_batches(self.schedule, batches, epoch, seed, shards * freq, unsup=unsup)

    def load_dataset(self, split: str, task_cfg: SlimIplConfig = None, **kwargs):
        if split == self.cfg.train_subset:
            self._oracle, self._fixed, self._subsets = [], [], []
        super().load_dataset(split, task_cfg, **kwargs)
        if split == self.cfg.train_subset:
            unsup = self.datasets[split].streams[UNSUP]
            self._ever_labeled = torch.zeros(len(unsup), dtype=torch.bool)
            self._unsup_seconds = torch.as_tensor(np.asarray(unsup.sizes, dtype=np.float64) / self.cfg.sample_rate)
            logger.info(f"unlabeled audio: {len(unsup)} utterances, {self._unsup_seconds.sum() / 3600:.2f} h "
                        "(pl_unlabeled_h logs the hours of it labeled at least once so far)")
            self.detector = CollapseDetector(self._labeled_token_rate(split), self.cfg.collapse_min_ratio,
                                             self.cfg.collapse_window, vocab_size=len(self.target_dictionary))
            logger.info(f"labeled data: {self.detector.reference_rate:.2f} tokens per second of audio (the "
                        f"collapse detector's reference; it fires below {self.cfg.collapse_min_ratio}x that)")

    def _labeled_token_rate(self, split: str, max_lines: int = 20000) -> float:
        """Tokens per second of audio in the labeled split (first ``max_lines`` utterances)."""
        sup = self.datasets[split].streams[SUP]
        n = min(len(sup), max_lines)
        tokens = sum(len(sup.get_label(i).split()) for i in range(n))  # label lines are space-separated tokens
        return tokens / (float(np.sum(sup.sizes[:n])) / self.cfg.sample_rate)

    # training ----------------------------------------------------------------------------------

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False, ema_model=None,
                   **kwargs):
        if update_num >= self.cfg.warmup_updates and self.cfg.unsup_updates > 0:
            self._lower_dropout(model)
        if batch_mode(sample) != UNSUP:
            return super().train_step(sample, model, criterion, optimizer, update_num, ignore_grad, **kwargs)
        if ignore_grad:  # a stand-in batch (a rank without one): no read of the cache; DDP still syncs
            loss = zero_loss(model, torch.float32, next(model.parameters()).device)
            optimizer.backward(loss)
            return loss, 0, {}
        pl_sample, log = self._pseudo_labeled(sample, ema_model if ema_model is not None else model, update_num)
        self._count_read(update_num, trained=pl_sample is not None)
        if pl_sample is None:  # a filling read: labeled and stored, no update (flashlight's recipe)
            self.track_mode({"mode": PL}, update_num, ignore_grad)  # a read of a pseudo-labeled update
            return torch.zeros(()), 0, dict(log, pl_fill=1)
        loss, sample_size, out = super().train_step(pl_sample, model, criterion, optimizer, update_num, ignore_grad,
                                                    **kwargs)
        out.update(log)
        return loss, sample_size, out

    def _count_read(self, update_num: int, trained: bool) -> None:
        seen, filling, done = self._reads if self._reads[0] == update_num else (update_num, 0, 0)
        self._reads = (seen, filling + (not trained), done + trained)

    def take_step(self, optimizer, model, update_num):
        """No optimizer step for an update whose every read only filled the cache (the same on
        every rank: the plan is shared)."""
        seen, filling, trained = self._reads
        if seen == update_num and filling and not trained:
            skip_step(optimizer)
            return
        super().take_step(optimizer, model, update_num)

    def valid_step(self, sample, model, criterion, ema_model=None, **kwargs):
        return super().valid_step(sample, model, criterion)  # validates the model, not its EMA

    def _lower_dropout(self, model) -> None:
        """slimIPL's dynamic dropout: every dropout of the model above ``pl_dropout`` -- modules, and
        float ``dropout`` attributes that a module applies itself (fairseq's TransformerEncoder after
        its positional convolution) -- and every layerdrop above ``pl_layerdrop`` is lowered."""
        if self._dropout_lowered:
            return
        self._dropout_lowered = True
        changed = set()
        p, drop = self.cfg.pl_dropout, self.cfg.pl_layerdrop
        for name, m in model.named_modules():
            if p is not None and isinstance(m, (torch.nn.Dropout, FairseqDropout)) and m.p > p:
                changed.add(f"{name}.p {m.p}")
                m.p = p
            for attr, low in (("dropout", p), ("layerdrop", drop)):
                value = getattr(m, attr, None)
                if low is not None and isinstance(value, float) and value > low:
                    changed.add(f"{name}.{attr} {value}")
                    setattr(m, attr, low)
        if changed:
            logger.info(f"pseudo-labeling starts: lowered to dropout {self.cfg.pl_dropout} / layerdrop "
                        f"{self.cfg.pl_layerdrop}: {', '.join(sorted(changed))}")

    def _pseudo_labeled(self, sample, teacher, update_num: int):
        """The pseudo-labeled batch this read of the cache trains on (None: a filling read that does
        not train), and the labeling statistics of the batch it labeled, if any.  The sampler has put
        the slot's batch in ``sample`` and the batch to label under ``"fresh"``."""
        rank, _ = rank_and_world()
        slot, relabel = self.cache.plan()
        filling = not self.cache.full
        if relabel != ("fresh" in sample) or filling == ("net_input" in sample):
            raise RuntimeError(self._misaligned(slot))
        fresh, log = self._label(sample["fresh"], teacher, update_num) if relabel else (None, {})
        self._digest_ids("labeled", fresh["parts"][rank]["ids"] if relabel else None)
        self._digest_ids("trained", sample["id"].cpu() if "net_input" in sample else None)
        pad = self.target_dictionary.pad()
        if filling:
            self.cache.put(slot, fresh)
            if not self.cfg.train_while_filling:
                return None, log
            return PseudoLabelingDataset.with_labels(sample["fresh"], fresh["parts"][rank], pad), log
        part = self.cache[slot]["parts"][rank]
        if not torch.equal(sample["id"].cpu(), part["ids"]):
            raise RuntimeError(self._misaligned(slot))
        if fresh is not None:
            self.cache.put(slot, fresh)
        return PseudoLabelingDataset.with_labels(sample, part, pad), log

    def _digest_ids(self, what: str, ids) -> None:
        """Chains ``ids`` into this rank's digest of the reads so far: two runs whose digests agree
        labeled and trained on the same utterances in the same order on that rank.  Checkpoints
        keep rank 0's (fairseq saves from rank 0); every rank reads the same cache slots, so it
        stands for the others' order, though not for their utterances."""
        listed = "-" if ids is None else ",".join(map(str, ids.tolist()))
        self._read_ids = hashlib.sha1(f"{self._read_ids}|{what}:{listed}".encode()).hexdigest()

    def _misaligned(self, slot: int) -> str:
        return (f"the unlabeled batch the loader gave is not the one slimIPL's cache reads (slot {slot}, "
                f"{self.cache.reads} reads of the full cache): the run was resumed with other settings than its "
                "checkpoint (world size, update_freq, max_tokens, cache_size, seed, data), or from a checkpoint "
                "made before the sampler chose the cache's batches; resume with the checkpoint's settings, or "
                "start a new run from its weights (checkpoint.finetune_from_model=...)")

    def _label(self, batch, teacher, update_num: int):
        """Labels ``batch`` with ``teacher``: (the cache entry, every rank's part; this rank's
        labeling statistics for the log).  Feeds the collapse detector."""
        d = self.target_dictionary
        ids = batch["id"].cpu()
        first = self.datasets[self.cfg.train_subset].offset[UNSUP]
        oracle = [self._oracle[i - first] for i in ids.tolist()]
        if self.cfg.pl_decoder == "oracle":
            decode = _given_transcripts(oracle)
        elif self.cfg.pl_decoder == "file":
            decode = _given_transcripts([self._fixed[i - first] for i in ids.tolist()])
        else:
            decode = self._decode
        labels = label_batch(teacher, batch["net_input"], self._blank, drop=(d.pad(), d.eos()),
                             soft=self.cfg.pseudo_labels == "soft", sample_rate=self.cfg.sample_rate,
                             oracle=oracle, decoder=decode)
        part = {"ids": ids, "tokens": labels.tokens, "log_probs": labels.log_probs or [],
                "stats": labels.stats.as_dict()}
        parts = self._gather(part)
        for p in parts:  # every rank's ids: each rank counts the same audio
            self._ever_labeled[p["ids"] - first] = True
        total = sum((LabelStats(**p.pop("stats")) for p in parts), LabelStats())
        message = self.detector.update(total, update_num)
        if message:
            logger.warning(message)
            if self.detector.collapsed and self.cfg.stop_on_collapse:
                raise RuntimeError(message + " (task.stop_on_collapse=true)")
        log = {_STAT + k: v for k, v in labels.stats.as_dict().items()}
        log[_STAT + "collapsed"] = int(self.detector.collapsed)
        log.update(self._subset_errors(ids - first, labels.errors, oracle))
        return {"parts": parts}, log

    def _subset_errors(self, rows: torch.Tensor, errors, oracle) -> Dict[str, int]:
        """With several unlabeled subsets, the labels' oracle errors and tokens per subset (logged as
        ``pl_cer_<subset>``: e.g. how good the labels of the held-out voices are among the rest)."""
        if len(self._subsets) < 2:
            return {}
        starts = [first for _, first in self._subsets]
        out: Dict[str, int] = {}
        for row, e, ref in zip(rows.tolist(), errors, oracle):
            if ref is None:
                continue
            name = self._subsets[bisect.bisect_right(starts, row) - 1][0]
            out[f"{_SUB}errors:{name}"] = out.get(f"{_SUB}errors:{name}", 0) + e
            out[f"{_SUB}tokens:{name}"] = out.get(f"{_SUB}tokens:{name}", 0) + len(ref)
        return out

    @property
    def _blank(self) -> int:
        return self.target_dictionary.index(self.blank_symbol)

    @staticmethod
    def _gather(part: Dict[str, Any]) -> List[Dict[str, Any]]:
        """Every rank's labeled part of this update (ranks hold the same cache)."""
        _, world = rank_and_world()
        if world == 1:
            return [part]
        parts = [None] * world
        torch.distributed.all_gather_object(parts, part, group=distributed_utils.get_data_parallel_group())
        return parts

    # checkpoints and logs --------------------------------------------------------------------

    def get_checkpoint_dict(self) -> Dict[str, Any]:
        """fairseq's hook for task state in checkpoints (saved in ``extra_state`` beside the
        training iterator's position, restored with it on resume)."""
        cache = dict(self.cache.state_dict(), size=self.cache.size, world_size=rank_and_world()[1],
                     unlabeled_utterances=len(self._ever_labeled), read_ids_sha1=self._read_ids,
                     ever_labeled=self._ever_labeled.clone(), settings=self._cache_settings())
        if self._cache_batches is not None:
            cache["unlabeled_batches"] = _batches_digest(self._cache_batches.batches)
        return {self.__class__.__name__: {"slimipl_cache": cache}}

    def set_checkpoint_dict(self, state: Dict[str, Any]) -> None:
        """Restores the cache; the sampler recomputes the batches it holds from the run's settings, so
        a cache built under other settings cannot continue (the error says what changed)."""
        cache = state.get("slimipl_cache")
        if cache is None:
            return
        _, world = rank_and_world()
        current = self._cache_settings()
        saved = cache.get("settings", current)  # checkpoints before these were kept: not checked here
        changed = [f"{what}: {then} in the checkpoint, {now} now" for what, then, now in (
            ("ranks", cache["world_size"], world),
            ("unlabeled utterances", cache["unlabeled_utterances"], len(self._ever_labeled)),
            ("task.cache_size", cache.get("size", self.cache.size), self.cache.size),
            *((k, saved.get(k, v), v) for k, v in current.items())) if then != now]
        if changed:
            raise ValueError(_cannot_continue("; ".join(changed)))
        self._resumed_batches = cache.get("unlabeled_batches")
        self._check_resumed_batches()
        self.cache.load_state_dict(cache)
        self._read_ids = cache.get("read_ids_sha1", "")
        if "ever_labeled" in cache:  # checkpoints before this count start it afresh
            self._ever_labeled = cache["ever_labeled"].clone()
        logger.info(f"pseudo-label cache restored: {len(self.cache)} of {self.cache.size} batches, "
                    f"{self.cache.reads} reads")

    def _cache_settings(self) -> Dict[str, Any]:
        """The settings the cache's history is a function of, besides its size and the batches."""
        return {"common.seed": self.cfg.seed, "task.cache_replace_prob": self.cfg.cache_replace_prob,
                "optimization.update_freq": self.cfg.update_freq[0]}

    def _check_resumed_batches(self) -> None:
        """The unlabeled batches the cache draws from are the checkpoint's (checked once both are
        known: fairseq builds the epoch's batches before it restores the task's state, or after)."""
        then, cached = self._resumed_batches, self._cache_batches
        if then is None or cached is None:
            return
        self._resumed_batches = None
        now = _batches_digest(cached.batches)
        if now != then:
            raise ValueError(_cannot_continue(
                f"the unlabeled batches differ: {then['batches']} batches of {then['utterances']} utterances in the "
                f"checkpoint, {now['batches']} of {now['utterances']} now, so dataset.max_tokens, "
                "dataset.max_sentences, dataset.required_batch_size_multiple or the unlabeled data changed"))

    @property
    def unlabeled_hours_labeled(self) -> float:
        """Hours of the unlabeled audio labeled at least once so far (every rank's reads)."""
        return float(self._unsup_seconds[self._ever_labeled].sum()) / 3600

    def reduce_metrics(self, logging_outputs, criterion):
        super().reduce_metrics(logging_outputs, criterion)
        if any(_STAT + "frames" in log for log in logging_outputs):
            # a running total, not a mean: weight 0 makes fairseq's meter show the latest value
            metrics.log_scalar("pl_unlabeled_h", self.unlabeled_hours_labeled, weight=0, round=4)
        fills = sum(log.get("pl_fill", 0) for log in logging_outputs)
        if fills:  # reads that only filled the cache (no update on them)
            metrics.log_scalar_sum("pl_fill", fills, round=0)
        total = sum((LabelStats(**{k[len(_STAT):]: log[k] for k in log if k.startswith(_STAT) and k != _STAT + "collapsed"})
                     for log in logging_outputs if _STAT + "frames" in log), LabelStats())
        if not total.frames:
            return
        metrics.log_scalar("pl_blank_ratio", total.blank_frames / total.frames, total.frames, round=4)
        metrics.log_scalar("pl_entropy", total.entropy / total.frames, total.frames, round=4)
        metrics.log_scalar("pl_token_rate", total.tokens_per_second, total.seconds, round=3)
        if self.detector is not None:
            metrics.log_scalar("pl_rate_ratio", total.tokens_per_second / self.detector.reference_rate,
                               total.seconds, round=3)
        if total.oracle_tokens:
            metrics.log_scalar("pl_cer", 100 * total.oracle_errors / total.oracle_tokens, total.oracle_tokens, round=2)
        for key in sorted({k for log in logging_outputs for k in log if k.startswith(_SUB + "tokens:")}):
            name = key[len(_SUB + "tokens:"):]
            tokens = sum(log.get(key, 0) for log in logging_outputs)
            errors = sum(log.get(f"{_SUB}errors:{name}", 0) for log in logging_outputs)
            if tokens:
                metrics.log_scalar(f"pl_cer_{name}", 100 * errors / tokens, tokens, round=2)
        metrics.log_scalar("pl_collapsed", max(log.get(_STAT + "collapsed", 0) for log in logging_outputs), round=0)


def _given_transcripts(given: List[Optional[List[int]]]):
    """A stand-in for the labeling decoder that returns the batch's given transcripts (in batch
    order) whatever the teacher emits: the true ones (``task.pl_decoder=oracle``) or fixed
    pseudo-labels (``file``)."""
    def decode(lprobs, lengths, blank):
        return [{"tokens": torch.tensor(tokens, dtype=torch.long)} for tokens in given]

    return decode


def _batches_digest(batches) -> Dict[str, Any]:
    """A fingerprint of the unlabeled batches (dataset indices) the cache draws from."""
    listed = "|".join(",".join(map(str, b)) for b in batches)
    return {"batches": len(batches), "utterances": sum(map(len, batches)),
            "sha1": hashlib.sha1(listed.encode()).hexdigest()}


def _cannot_continue(what: str) -> str:
    return (f"the checkpoint's pseudo-label cache cannot continue ({what}): resume with the checkpoint's "
            "settings, or start a new run from its weights (checkpoint.finetune_from_model=...), whose cache "
            "fills afresh")
