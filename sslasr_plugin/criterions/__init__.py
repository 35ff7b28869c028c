from . import ce_pl, csl  # noqa: F401  (registers sslasr_ce_pl, sslasr_csl)
