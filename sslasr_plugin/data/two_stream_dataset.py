"""A labeled and an unlabeled dataset behind one index space, collated one stream at a time."""
from typing import Optional

import numpy as np
from fairseq.data import FairseqDataset

from ..batch_modes import SUP, UNSUP


class TwoStreamDataset(FairseqDataset):
    """Indices [0, len(sup)) are labeled utterances, the rest unlabeled audio.  A batch must
    come from one stream (the alternating sampler guarantees it); its sample dict carries
    ``mode`` ("sup" or "unsup"), which the joint criterion and optimizer step follow.
    ``unsup=None``: no unlabeled stream (supervised-only runs)."""

    def __init__(self, sup: FairseqDataset, unsup: Optional[FairseqDataset]):
        super().__init__()
        self.streams = {SUP: sup, UNSUP: unsup if unsup is not None else _Empty()}
        self.offset = {SUP: 0, UNSUP: len(sup)}
        self.sizes = np.concatenate([self.streams[SUP].sizes, self.streams[UNSUP].sizes])

    def __len__(self):
        return len(self.streams[SUP]) + len(self.streams[UNSUP])

    def locate(self, index: int):
        """(stream, index within the stream) of a dataset index."""
        mode = SUP if index < self.offset[UNSUP] else UNSUP
        return mode, index - self.offset[mode]

    def stream_indices(self, mode: str, local_indices) -> np.ndarray:
        return np.asarray(local_indices, dtype=np.int64) + self.offset[mode]

    def __getitem__(self, index):
        mode, i = self.locate(index)
        item = self.streams[mode][i]
        item["_mode"] = mode
        item["id"] = index  # one id space over both streams (the slimIPL cache reloads batches by id)
        return item

    def collater(self, samples):
        modes = {s.pop("_mode") for s in samples}
        if len(modes) > 1:
            raise ValueError("a batch mixes labeled and unlabeled utterances; batches must come from one stream")
        if not modes:
            return {}
        (mode,) = modes
        batch = self.streams[mode].collater(samples)
        if batch:
            batch["mode"] = mode
        return batch

    def num_tokens(self, index):
        mode, i = self.locate(index)
        return self.streams[mode].num_tokens(i)

    def size(self, index):
        mode, i = self.locate(index)
        return self.streams[mode].size(i)

    @property
    def supports_prefetch(self):
        return False

    def set_epoch(self, epoch):
        super().set_epoch(epoch)
        for ds in self.streams.values():
            if hasattr(ds, "set_epoch"):
                ds.set_epoch(epoch)


class _Empty(FairseqDataset):
    sizes = np.zeros(0, dtype=np.int64)

    def __len__(self):
        return 0
