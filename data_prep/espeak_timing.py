"""Where each word starts and ends in a synthetic-corpus utterance, from espeak-ng itself.

The corpus (data_prep.corpus) speaks each sentence with the espeak-ng command line and resamples
its 22,050 Hz output to 16 kHz with sox (no tempo change).  libespeak-ng, driven here through
ctypes with the same voice, rate and pitch, synthesizes the same samples and reports a phoneme
event at the sample where each phoneme starts: a measure of word boundaries that owes nothing
to any acoustic model, against which data_prep.align's segments are checked
(benchmarks/alignment_boundaries.py).
"""
import ctypes
import ctypes.util
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import List, Optional, Tuple

LIBRARY = "libespeak-ng.so.1"
_SYNCHRONOUS, _PHONEME_EVENTS = 2, 0x0001  # espeak_AUDIO_OUTPUT, espeak_Initialize options
_WORD, _PHONEME = 1, 7  # espeak_EVENT_TYPE
_RATE, _PITCH = 1, 3  # espeak_PARAMETER
_POS_CHARACTER, _ENDPAUSE = 1, 0x1000  # the command line's end-of-sentence pause
TOLERANCE_S = 0.01


class EspeakTimingError(RuntimeError):
    pass


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


class _Voice(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_char_p), ("identifier", ctypes.c_char_p),
                ("gender", ctypes.c_ubyte), ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte),
                ("xx1", ctypes.c_ubyte), ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


class EspeakTimer:
    """libespeak-ng in synchronous mode with phoneme events; one per process (the library is global)."""

    def __init__(self):
        try:
            self.lib = ctypes.CDLL(ctypes.util.find_library("espeak-ng") or LIBRARY)
        except OSError as err:
            raise EspeakTimingError(f"{LIBRARY} not found ({err}); install it with 'apt-get install espeak-ng'") from err
        self.sample_rate = self.lib.espeak_Initialize(_SYNCHRONOUS, 0, None, _PHONEME_EVENTS)
        if self.sample_rate <= 0:
            raise EspeakTimingError("espeak_Initialize failed: is espeak-ng-data installed?")
        self._samples, self._events = 0, []
        self._callback = _CALLBACK(self._collect)  # kept: the library holds a pointer to it
        self.lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav, n, events):
        self._samples += n
        i = 0
        while events[i].type != 0:
            e = events[i]
            if e.type in (_WORD, _PHONEME):
                self._events.append((e.type, e.sample, e.id.split(b"\0")[0].decode("latin-1")))
            i += 1
        return 0

    def synthesize(self, text: str, voice: str, rate: int, pitch: int) -> Tuple[int, List[tuple]]:
        """Samples (at ``self.sample_rate``) and (type, sample, phoneme name) events of ``text``,
        spoken as data_prep.corpus.synthesize speaks it."""
        self._samples, self._events = 0, []
        # As the espeak-ng command line does: a voice name, else a language (with its +variant).
        if (self.lib.espeak_SetVoiceByName(voice.encode()) != 0
                and self.lib.espeak_SetVoiceByProperties(ctypes.byref(_Voice(languages=voice.encode()))) != 0):
            raise EspeakTimingError(f"espeak-ng has no voice {voice!r}")
        self.lib.espeak_SetParameter(_RATE, rate, 0)
        self.lib.espeak_SetParameter(_PITCH, pitch, 0)
        data = text.lower().encode()
        self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _ENDPAUSE, None, None)
        self.lib.espeak_Synchronize()
        return self._samples, self._events


def word_spans(events: List[tuple]) -> List[Tuple[int, int]]:
    """(first sample, end sample) of each word's phonemes: a word starts at its first phoneme
    and ends where the next phoneme event (a pause '_' or the next word's) starts."""
    spans, current = [], None
    phonemes = [(i, s, name) for i, (kind, s, name) in enumerate(events) if kind == _PHONEME]
    for k, (i, sample, name) in enumerate(phonemes):
        word_started = any(events[j][0] == _WORD for j in range(phonemes[k - 1][0] + 1 if k else 0, i))
        if word_started:
            current = [sample, None]
            spans.append(current)
        if current is not None and not name.startswith("_"):
            current[1] = phonemes[k + 1][1] if k + 1 < len(phonemes) else sample
    return [(a, b) for a, b in spans if b is not None]


def _synthesize_fresh(text: str, voice: str, rate: int, pitch: int) -> Tuple[int, int, List[tuple]]:
    timer = EspeakTimer()
    return (timer.sample_rate, *timer.synthesize(text, voice, rate, pitch))


def word_times(text: str, voice: str, rate: int, pitch: int, corpus_samples: Optional[int] = None
               ) -> List[Tuple[float, float]]:
    """(start, end) in seconds of each word of an utterance of the corpus (its corpus.json entry's
    text, voice+variant, rate, pitch).  ``corpus_samples`` (the 16 kHz file's length) is checked
    against espeak's own length, so that timings of other audio are never reported (espeak-ng's
    length varies by a few samples from run to run, hence a tolerance of ``TOLERANCE_S``).

    Each utterance is synthesized in a new process: the command line starts a fresh library
    every time, and a reused one carries the previous voice's state (some utterances come out
    tens of milliseconds longer)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        sample_rate, samples, events = pool.submit(_synthesize_fresh, text, voice, rate, pitch).result()
    if corpus_samples is not None and abs(samples / sample_rate - corpus_samples / 16000) > TOLERANCE_S:
        raise EspeakTimingError(f"espeak-ng speaks {text!r} in {samples} samples at {sample_rate} Hz, "
                                f"which is not the corpus file's {corpus_samples} at 16 kHz: another espeak-ng "
                                "version or voice built this corpus")
    return [(a / sample_rate, b / sample_rate) for a, b in word_spans(events)]
