from . import audio_ctc  # noqa: F401  (registers sslasr_audio_ctc)
