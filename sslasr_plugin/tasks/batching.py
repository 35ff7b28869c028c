"""Batch iterators over a task's own batch sampler, for tasks that decide batches themselves."""
import inspect

from fairseq.data import iterators
from fairseq.tasks import FairseqTask

_GET_BATCH_ITERATOR = inspect.signature(FairseqTask.get_batch_iterator)


def iterator_options(task, dataset, *args, **kwargs) -> dict:
    """The arguments of a ``get_batch_iterator`` call by name, fairseq's defaults filled in."""
    bound = _GET_BATCH_ITERATOR.bind(task, dataset, *args, **kwargs)
    bound.apply_defaults()
    return bound.arguments


def sampled_iterator(dataset, batch_sampler, options: dict, **extra) -> iterators.EpochBatchIterator:
    """fairseq's iterator over ``batch_sampler(dataset, epoch)``'s batches: it shards them over the
    ranks (equal counts, padded with empty batches) and re-runs the sampler every epoch.  The
    workers end with each epoch: the tasks make a new iterator every epoch, and persistent workers
    of the old one would live on until garbage collection (``task.persistent_workers``)."""
    return iterators.EpochBatchIterator(
        dataset=dataset, collate_fn=dataset.collater, batch_sampler=batch_sampler, seed=options["seed"],
        num_shards=options["num_shards"], shard_id=options["shard_id"], num_workers=options["num_workers"],
        epoch=options["epoch"], buffer_size=options["data_buffer_size"], persistent_workers=False, **extra,
    )
