from . import dual_adam  # noqa: F401  (registers sslasr_dual_adam)
from . import dual_schedule  # noqa: F401  (registers sslasr_dual_schedule)
