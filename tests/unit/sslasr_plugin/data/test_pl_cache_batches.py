"""slimIPL's cache on the data side: the sampler's batches against the cache's own decisions,
its layout for fairseq's ranks, a restart, the dataset's two parts, the schedule's counts."""
import numpy as np
import torch
from fairseq.data import FairseqDataset

from sslasr_plugin.batch_modes import PL, SUP, UNSUP
from sslasr_plugin.data.alternating_batches import Schedule
from sslasr_plugin.data.pl_cache import PseudoLabelCache
from sslasr_plugin.data.pl_cache_batches import CacheBatches, PseudoLabelingDataset

BATCHES = [[10 * b + i for i in range(b % 3 + 1)] for b in range(7)]  # 7 unlabeled batches of 1-3 ids


def test_sampler_gives_each_read_the_batches_the_cache_decides():
    """A run of the cache as the task runs it (fill, then train on the slot and maybe relabel it),
    over several passes: every read trains on the ids its slot holds and labels a new batch exactly
    when the cache asks for one, on both ranks."""
    cache = PseudoLabelCache(size=3, replace_prob=0.4, seed=5)
    sampler = CacheBatches(cache.decide, BATCHES, seed=5, shards=2)
    relabeled = 0
    for t in range(60):
        train, fresh = sampler.read(t)
        slot, relabel = cache.plan()
        filling = not cache.full
        assert (fresh is not None) == relabel and (train is None) == filling, t
        if not filling:
            assert cache[slot] == train, t  # the slot holds the batches (per rank) this read trains on
            relabeled += relabel
        if relabel:
            assert len(fresh) == 2 and all(b in BATCHES for b in fresh)
            cache.put(slot, fresh)
    assert 10 < relabeled < 35  # p = 0.4 of 57 reads
    # new batches come from passes over all batches: the first 7 draws are the 7 batches
    first = CacheBatches(cache.decide, BATCHES, seed=5, shards=1)
    drawn = [first.read(t)[1][0] for t in range(3)] + [first._draw()[0] for _ in range(4)]
    assert sorted(drawn) == sorted(BATCHES)


def test_sampler_recomputes_the_same_reads_after_a_restart():
    def sampler():
        return CacheBatches(PseudoLabelCache(4, 0.3, seed=1).decide, BATCHES, seed=1, shards=1)

    straight = sampler()
    reads = [straight.read(t) for t in range(40)]
    resumed = sampler()  # a resumed run asks for its first read without the ones before it
    assert [resumed.read(t) for t in range(23, 40)] == reads[23:]
    assert straight.read(5) == reads[5]  # asking for an earlier read rewinds
    other_seed = CacheBatches(PseudoLabelCache(4, 0.3, seed=2).decide, BATCHES, seed=2, shards=1)
    assert [other_seed.read(t) for t in range(40)] != reads


def test_reads_are_laid_out_read_by_read_rank_by_rank_with_labeling_ids_shifted():
    sampler = CacheBatches(PseudoLabelCache(2, 1.0, seed=0).decide, BATCHES, seed=0, shards=2)
    reads = [sampler.read(t) for t in range(3)]  # two filling reads, then a read that trains and relabels
    sampler = CacheBatches(PseudoLabelCache(2, 1.0, seed=0).decide, BATCHES, seed=0, shards=2)
    laid_out = sampler.reads(0, 3, fresh_offset=1000)
    (_, f0), (_, f1), (train, f2) = reads
    shifted = [[[i + 1000 for i in b] for b in f] for f in (f0, f1, f2)]
    assert laid_out == [*shifted[0], *shifted[1], train[0] + shifted[2][0], train[1] + shifted[2][1]]


class _Audio(FairseqDataset):
    def __init__(self, n):
        self.sizes = np.full(n, 4)

    def __getitem__(self, i):
        return {"id": i, "source": torch.full((4,), float(i))}

    def __len__(self):
        return len(self.sizes)

    def collater(self, samples):
        return {"id": torch.tensor([s["id"] for s in samples]),
                "net_input": {"source": torch.stack([s["source"] for s in samples])}}


def test_dataset_collates_the_batch_to_train_on_and_the_batch_to_label_apart():
    dataset = PseudoLabelingDataset(_Audio(3), _Audio(5))  # ids 0-2 labeled, 3-7 unlabeled
    offset = dataset.fresh_offset()
    assert offset == len(dataset) == 8
    batch = dataset.collater([dataset[i] for i in (4, 6, 3 + offset, 7 + offset)])
    assert batch["mode"] == UNSUP and batch["id"].tolist() == [4, 6] and batch["fresh"]["id"].tolist() == [3, 7]
    assert batch["net_input"]["source"][:, 0].tolist() == [1.0, 3.0]  # unlabeled items 1 and 3
    assert batch["fresh"]["net_input"]["source"][:, 0].tolist() == [0.0, 4.0]
    filling = dataset.collater([dataset[5 + offset]])
    assert set(filling) == {"mode", "fresh"} and filling["fresh"]["id"].tolist() == [5]
    assert dataset.collater([dataset[1]])["mode"] == SUP
    part = {"ids": torch.tensor([4, 6]), "tokens": [torch.tensor([5, 6, 7]), torch.tensor([8])], "log_probs": []}
    labeled = PseudoLabelingDataset.with_labels(batch, part, pad=1)
    assert labeled["mode"] == PL and "fresh" not in labeled and "fresh" in batch
    assert labeled["target"].tolist() == [[5, 6, 7], [8, 1, 1]] and labeled["target_lengths"].tolist() == [3, 1]
    assert labeled["ntokens"] == 4 and "pl_log_probs" not in labeled


def test_schedule_counts_updates_of_each_kind():
    for schedule in (Schedule(5, 3, 1, warmup=SUP), Schedule(4, 2, 2, warmup=UNSUP), Schedule(0, 0, 1, warmup=SUP),
                     Schedule(2, 10, 1, warmup=SUP)):
        for mode in (SUP, UNSUP):
            for n in range(40):
                assert schedule.count(mode, n) == sum(schedule.mode(u) == mode for u in range(n)), (schedule, mode, n)
