from . import dual_adam  # noqa: F401  (registers sslasr_dual_adam)
