from . import ctc, wav2vec2  # noqa: F401  (registers sslasr_ctc, sslasr_wav2vec2)
