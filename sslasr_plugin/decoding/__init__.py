from .ctc import CtcGenerator, greedy_decode  # noqa: F401
