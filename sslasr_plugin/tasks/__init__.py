from . import audio_ctc, frame_labels, joint, slimipl  # noqa: F401  (registers sslasr_audio_ctc, sslasr_frame_labels, sslasr_joint, sslasr_slimipl)
