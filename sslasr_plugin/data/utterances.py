"""The audio file behind a dataset index, through the dataset wrappers the plugin's tasks build."""
import bisect

from fairseq.data import ConcatDataset

from .two_stream_dataset import TwoStreamDataset


def utterance_name(dataset, index: int) -> str:
    """The file name fairseq's audio datasets hold for ``index`` ("#index" when none does)."""
    while dataset is not None:
        if isinstance(dataset, TwoStreamDataset):
            mode, index = dataset.locate(index)
            dataset = dataset.streams[mode]
        elif isinstance(dataset, ConcatDataset):
            part = bisect.bisect_right(dataset.cumulative_sizes, index)
            index -= dataset.cumulative_sizes[part - 1] if part else 0
            dataset = dataset.datasets[part]
        elif getattr(dataset, "fnames", None) is not None:  # fairseq's FileAudioDataset: no name lookup of its own
            name = dataset.fnames[index]  # compressed bytes, in a list or (with pyarrow) an array
            return dataset.text_compressor.decompress(name.as_py() if hasattr(name, "as_py") else name)
        elif getattr(dataset, "audio_names", None) is not None:  # fairseq's HubertDataset
            return dataset.audio_names[index]
        else:
            dataset = getattr(dataset, "dataset", None)  # AddTargetDataset and the like
    return f"#{index}"
