from . import ctc, frame_model, wav2vec2  # noqa: F401  (registers sslasr_ctc, sslasr_frame_model, sslasr_wav2vec2)
