"""The plugin's patches to fairseq: applied on import of the plugin, once, and only then."""
import subprocess
import sys

import pytest

from tests.helpers import REPO

PROBE = (
    "import sys\n"
    "from fairseq import checkpoint_utils\n"
    "print('plugin' if 'sslasr_plugin' in sys.modules else 'no plugin', "
    "type(checkpoint_utils.PathManager).__name__ if not isinstance(checkpoint_utils.PathManager, type) "
    "else checkpoint_utils.PathManager.__name__, hasattr(checkpoint_utils.load_checkpoint_to_cpu, '__wrapped__'))\n"
)


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout


def test_importing_the_plugin_applies_every_patch_once():
    out = _run("import sslasr_plugin\nfrom sslasr_plugin import patches\npatches.apply()\n"
               "from fairseq import checkpoint_utils\n"
               "assert not hasattr(checkpoint_utils.load_checkpoint_to_cpu.__wrapped__, '__wrapped__')\n"
               "from fairseq.models.hubert import hubert\nfrom fairseq.models.wav2vec import wav2vec2\n"
               "for m in (hubert, wav2vec2):\n"
               "    assert not hasattr(m.compute_mask_indices.__wrapped__, '__wrapped__')\n"
               "from fairseq.trainer import Trainer\n"
               "from fairseq.data.iterators import EpochBatchIterator as E\n"
               "def layers(f):\n"
               "    names = []\n"
               "    while hasattr(f, '_sslasr_patch'):\n"
               "        names, f = names + [f._sslasr_patch], f.__wrapped__\n"
               "    assert f.__module__ in ('fairseq.trainer', 'fairseq.data.iterators'), f  # fairseq's own\n"
               "    return names\n"
               "trim = ['trimmed_heap'] if patches.malloc_trim() else []\n"
               "assert layers(Trainer.train_step) == ['no_update_past_max'] + trim, layers(Trainer.train_step)\n"
               "assert layers(E._get_iterator_for_epoch) == (['trimmed_before_workers'] if trim else [])\n"
               "assert layers(Trainer.load_checkpoint) == ['ema_from_weights']\n" + PROBE)
    assert out.split() == ["plugin", "AtomicCopyPathManager", "True"]


def test_data_tools_read_manifests_without_the_plugin_or_its_patches():
    out = _run("import data_prep.check, sslasr_data.validate\n" + PROBE)
    assert out.split() == ["no", "plugin", "PathManager", "False"]


def test_known_harmless_warnings_are_quiet_and_others_still_show():
    code = (
        "import logging, warnings\nimport sslasr_plugin\n"
        "from sslasr_plugin.patches import KNOWN_HARMLESS_WARNINGS, PYARROW_DEBUG_LINE\n"
        "for category, start, _ in KNOWN_HARMLESS_WARNINGS:\n"
        "    warnings.warn(start + ' (and the rest of the message)', category)\n"
        "warnings.warn('`torch.something_else` is deprecated', FutureWarning)\n"
        "logging.basicConfig(level=logging.DEBUG)\n"
        "log = logging.getLogger('fairseq.data.audio.raw_audio_dataset')\n"
        "log.debug(PYARROW_DEBUG_LINE + '. Please install pyarrow for better performance')\n"
        "log.debug('another debug line')\n"
    )
    err = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stderr
    assert "torch.something_else" in err and "another debug line" in err
    assert "weight_norm" not in err and "autocast" not in err and "pin_memory" not in err and "pyarrow" not in err


def test_batching_keeps_the_last_batch_fairseq_drops():
    """fairseq issue 5036: with required_batch_size_multiple 8, 12 equal utterances that fit in
    one batch came out as one batch of 8; the 4 others were never evaluated."""
    code = (
        "import numpy as np\nfrom fairseq.data import data_utils\n"
        "def run():\n"
        "    batches = data_utils.batch_by_size(np.arange(12, dtype=np.int64), lambda i: 10, max_tokens=1000,\n"
        "                                       required_batch_size_multiple=8)\n"
        "    return sorted(int(i) for b in batches for i in b), [len(b) for b in batches]\n"
        "print(run())\nimport sslasr_plugin\nprint(run())\n"
    )
    stock, patched = _run(code).strip().splitlines()
    assert stock == f"({list(range(8))}, [8])"
    assert patched == f"({list(range(12))}, [8, 4])"


def test_masks_follow_numpys_seed_with_fairseqs_distribution(monkeypatch):
    """fairseq draws each row's mask from np.random.default_rng(None) (OS entropy): one seed gave
    two runs different masks.  Patched, the seed decides them; the masked fraction is fairseq's."""
    import numpy as np
    import sslasr_plugin  # noqa: F401  (applies the patches)
    from fairseq.data import data_utils
    from fairseq.models.wav2vec import wav2vec2
    from sslasr_plugin import patches

    def draw(compute, seed, rows=512):
        # rows masked independently (fairseq's default trims every row to the batch's fewest)
        np.random.seed(seed)
        return compute((rows, 200), None, 0.2, 5, "static", 0.0, min_masks=2, require_same_masks=False)

    patched = wav2vec2.compute_mask_indices
    assert np.array_equal(draw(patched, 1), draw(patched, 1)) and not np.array_equal(draw(patched, 1), draw(patched, 2))
    assert not np.array_equal(draw(data_utils.compute_mask_indices, 1), draw(data_utils.compute_mask_indices, 1))
    rows = draw(patched, 1)
    assert len({r.tobytes() for r in rows}) == len(rows)  # every row its own generator
    assert abs(rows.mean() - draw(data_utils.compute_mask_indices, 1).mean()) < 0.01
    # a caller's own seed is left alone; another rank draws other masks from the same global state
    np.random.seed(1)
    mine = patched((4, 200), None, 0.2, 5, "static", 0.0, seed=7, epoch=1, indices=np.arange(4))
    assert np.array_equal(mine, data_utils.compute_mask_indices((4, 200), None, 0.2, 5, "static", 0.0, seed=7,
                                                                epoch=1, indices=np.arange(4)))
    monkeypatch.setattr(patches, "rank_and_world", lambda: (1, 2))
    assert not np.array_equal(draw(patched, 1), rows)


# Frees 1-8 MB blocks between small survivors, so that the freed memory is not at the heap's top.
FRAGMENT = (
    "import os, random, torch\n"
    "def rss_mb():\n"
    "    return int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20\n"
    "random.seed(0)\nsurvivors = []\n"
    "for _ in range(60):\n"
    "    blocks = [torch.ones(random.randint(250_000, 2_000_000)) for _ in range(80)]\n"
    "    survivors.append(torch.ones(random.randint(1_000, 50_000)))\n"
    "    del blocks\n"
)


def _trims_and_reads_memory() -> bool:
    import ctypes
    import os

    return hasattr(ctypes.CDLL(None), "malloc_trim") and os.path.exists("/proc/self/smaps_rollup")


needs_glibc_and_proc = pytest.mark.skipif(not _trims_and_reads_memory(), reason="no glibc malloc_trim or no /proc")


@needs_glibc_and_proc
def test_training_hands_freed_heap_memory_back_every_100_updates():
    """glibc kept hundreds of MB a process had freed until malloc_trim: the patched train_step
    calls it after every HEAP_TRIM_UPDATES-th update, and the resident memory falls."""
    code = FRAGMENT + (
        "from sslasr_plugin import patches\n"
        "class Trainer:\n"
        "    updates = 0\n"
        "    def get_num_updates(self):\n"
        "        return self.updates\n"
        "step = patches.trimmed_heap(lambda self: None, patches.malloc_trim())\n"
        "t = Trainer()\nbefore = rss_mb()\n"
        "t.updates = patches.HEAP_TRIM_UPDATES - 1\nstep(t)\nnot_yet = rss_mb()\n"
        "t.updates = patches.HEAP_TRIM_UPDATES\nstep(t)\nprint(before, not_yet, rss_mb())\n"
    )
    before, not_yet, after = map(float, _run(code).split())
    assert abs(not_yet - before) < 20
    assert after < before - 100, (before, after)


# A data-loader worker forked over that heap, while the trainer reuses the heap: its private memory (MB).
WORKER_MEMORY = (
    "import multiprocessing\n"
    "from fairseq.data import iterators\n"
    "class Items(torch.utils.data.Dataset):\n"
    "    def __len__(self):\n"
    "        return 4\n"
    "    def __getitem__(self, i):\n"
    "        return i\n"
    "itr = iterators.EpochBatchIterator(Items(), collate_fn=lambda b: b, batch_sampler=[[0], [1], [2], [3]],\n"
    "                                   num_workers=1)\n"
    "epoch = itr.next_epoch_itr(shuffle=False)\n"
    "next(epoch)  # the worker is forked and running\n"
    "reused = [torch.ones(random.randint(250_000, 2_000_000)) for _ in range(80)]\n"
    "(worker,) = multiprocessing.active_children()\n"
    "print(sum(int(line.split()[1]) for line in open(f'/proc/{worker.pid}/smaps_rollup')\n"
    "          if line.startswith('Private_Dirty')) / 1024)\n"
)


@needs_glibc_and_proc
def test_data_loader_workers_do_not_keep_a_copy_of_the_freed_heap():
    """A worker forked over a heap with ~350 MB freed kept ~340 MB of it as its own copy once the
    trainer wrote there again (stock fairseq); with the plugin the heap is trimmed first."""
    stock = float(_run(FRAGMENT + WORKER_MEMORY))
    patched = float(_run("import sslasr_plugin\n" + FRAGMENT + WORKER_MEMORY))
    assert stock > 200 and patched < 50, (stock, patched)


def test_heap_trim_runs_on_the_interval_only():
    from sslasr_plugin import patches

    calls, seen = [], []

    class Trainer:
        updates = 0

        def get_num_updates(self):
            return self.updates

    step = patches.trimmed_heap(lambda self, sample: seen.append(sample) or "out", calls.append, every=3)
    t = Trainer()
    results = []
    for n in range(1, 8):
        t.updates = n
        results.append(step(t, n))
    assert results == ["out"] * 7 and seen == list(range(1, 8))
    assert calls == [0, 0]  # after updates 3 and 6, with malloc_trim's argument 0


def test_heap_trim_before_a_data_loader_only_when_it_has_workers():
    from sslasr_plugin import patches

    calls = []

    class Epochs:
        num_workers = 0

    make = patches.trimmed_before_workers(lambda self, epoch: f"epoch {epoch}", calls.append)
    e = Epochs()
    assert make(e, 1) == "epoch 1" and calls == []
    e.num_workers = 2
    assert make(e, 2) == "epoch 2" and calls == [0]


@needs_glibc_and_proc
def test_a_benchmark_can_take_one_patch_off_and_keep_the_others():
    out = _run("import sslasr_plugin\nfrom sslasr_plugin.patches import without_patches\n"
               "from fairseq.trainer import Trainer\n"
               "without_patches(Trainer, 'train_step', 'trimmed_heap')\n"
               "f, names = Trainer.train_step, []\n"
               "while hasattr(f, '_sslasr_patch'):\n"
               "    names, f = names + [f._sslasr_patch], f.__wrapped__\n"
               "print(*names, f.__module__, f.__qualname__)\n")
    assert out.split() == ["no_update_past_max", "fairseq.trainer", "Trainer.train_step"]


def test_an_ema_starts_from_the_weights_of_a_checkpoint_that_holds_none(monkeypatch):
    """fairseq's load_checkpoint deletes the loaded weights, then (store_ema, no EMA in the
    checkpoint) reads them to start the EMA: KeyError.  Patched, it finds them as the checkpoint's
    EMA; a checkpoint's own EMA is kept, nothing is lent without store_ema, and after the load
    fairseq's loader is back and the returned extra_state holds no weights."""
    from types import SimpleNamespace

    from fairseq import checkpoint_utils

    from sslasr_plugin import patches

    saved = {"plain": {"model": {"w": 1}, "extra_state": {"epoch": 1}},
             "with_ema": {"model": {"w": 1}, "extra_state": {"ema": {"w": 2}}}}
    monkeypatch.setattr(checkpoint_utils, "load_checkpoint_to_cpu",
                        lambda path: {k: dict(v) for k, v in saved[path].items()})
    loader = checkpoint_utils.load_checkpoint_to_cpu

    def fairseqs(self, path):  # what fairseq 0.12's Trainer.load_checkpoint does with them
        state = checkpoint_utils.load_checkpoint_to_cpu(path)
        del state["model"]
        extra = state["extra_state"]
        if self.cfg.ema.store_ema:
            self.ema = extra["ema"] if "ema" in extra else state["model"]
        return extra

    load = patches.ema_from_weights(fairseqs)
    trainer = SimpleNamespace(cfg=SimpleNamespace(ema=SimpleNamespace(store_ema=True)))
    extra = load(trainer, "plain")
    assert trainer.ema == {"w": 1} and extra == {"epoch": 1}
    assert checkpoint_utils.load_checkpoint_to_cpu is loader
    assert load(trainer, "with_ema") == {"ema": {"w": 2}} and trainer.ema == {"w": 2}
    trainer.cfg.ema.store_ema = False
    with pytest.raises(KeyError):  # fairseq's own failure shows how it would have gone
        fairseqs(SimpleNamespace(cfg=SimpleNamespace(ema=SimpleNamespace(store_ema=True))), "plain")
    assert load(trainer, "plain") == {"epoch": 1} and checkpoint_utils.load_checkpoint_to_cpu is loader
