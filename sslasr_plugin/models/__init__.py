from . import ctc, frame_model, hubert, wav2vec2  # noqa: F401  (registers sslasr_ctc, sslasr_frame_model, sslasr_hubert, sslasr_wav2vec2)
