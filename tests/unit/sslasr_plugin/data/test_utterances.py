"""data.utterances: the audio file of a dataset index, through the two-stream and concat wrappers."""
from fairseq.data import ConcatDataset
from fairseq.data.audio.raw_audio_dataset import FileAudioDataset

from sslasr_plugin.data.two_stream_dataset import TwoStreamDataset
from sslasr_plugin.data.utterances import utterance_name


def _audio(corpus, split):
    return FileAudioDataset(str(corpus / f"{split}.tsv"), sample_rate=16000)


def _rows(corpus, split):
    return [line.split("\t")[0] for line in (corpus / f"{split}.tsv").read_text().splitlines()[1:]]


def test_names_are_the_manifest_rows_of_each_stream(tiny_corpus):
    labeled, unlabeled, valid = (_rows(tiny_corpus, s) for s in ("labeled", "unlabeled", "valid"))
    both = TwoStreamDataset(_audio(tiny_corpus, "labeled"),
                            ConcatDataset([_audio(tiny_corpus, "unlabeled"), _audio(tiny_corpus, "valid")]))
    names = [utterance_name(both, i) for i in range(len(both))]
    assert names == labeled + unlabeled + valid
    assert utterance_name(None, 5) == "#5"
