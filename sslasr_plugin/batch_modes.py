"""The kinds of batch the plugin's tasks, criterions and optimizers agree on, owned here.

A two-stream task's sampler gives each batch the ``mode`` of its stream (``SUP``: labeled,
``UNSUP``: unlabeled audio); slimIPL turns an unlabeled batch into a ``PL`` one by attaching
pseudo-labels.  A batch without a mode (validation, plain CTC tasks) is ``SUP``.
"""
SUP, UNSUP, PL = "sup", "unsup", "pl"
STREAMS = (UNSUP, SUP)


def batch_mode(sample) -> str:
    return sample.get("mode", SUP)


def stream_of(mode: str) -> str:
    """The stream a batch of ``mode`` was drawn from (a pseudo-labeled batch is unlabeled audio)."""
    return UNSUP if mode == PL else mode

