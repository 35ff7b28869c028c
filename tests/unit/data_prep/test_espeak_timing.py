"""espeak-ng's word timings: the event parsing on a hand-made list, and a real utterance
synthesized by the corpus builder, whose length the library's synthesis must match."""
import pytest
import soundfile as sf

from data_prep.corpus import Utterance, synthesize
from data_prep.espeak_timing import EspeakTimingError, word_spans, word_times

WORD, PHONEME = 1, 7


def test_word_spans_end_at_the_next_phoneme_and_skip_pauses():
    events = [(WORD, 0, ""), (PHONEME, 0, "I"), (PHONEME, 100, "z"), (PHONEME, 180, "_:"),
              (WORD, 250, ""), (PHONEME, 260, "a#"), (PHONEME, 330, "_")]
    # "is" ends where its pause starts (180), "a" where the final pause starts (330)
    assert word_spans(events) == [(0, 180), (260, 330)]


def test_word_times_follow_the_corpus_audio(tmp_path):
    utt = Utterance(id="u", split="x", text="THE QUICK BROWN FOX", voice="en-gb", variant="m2", rate=160, pitch=50)
    wav = tmp_path / "u.wav"
    synthesize(utt, wav)
    samples = sf.info(str(wav)).frames
    times = word_times(utt.text, utt.speaker, utt.rate, utt.pitch, samples)
    assert len(times) == 4
    assert all(a < b <= c for (a, b), (c, _) in zip(times, times[1:]))
    assert times[0][0] < 0.05 and times[-1][1] <= samples / 16000
    # the same text at another rate is other audio: refused
    with pytest.raises(EspeakTimingError, match="not the corpus file's"):
        word_times(utt.text, utt.speaker, 100, utt.pitch, samples)
