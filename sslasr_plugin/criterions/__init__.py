from . import ce_pl, csl, joint_cpc_ctc, pl_ctc  # noqa: F401  (registers sslasr_ce_pl, sslasr_csl, sslasr_joint_cpc_ctc, sslasr_pl_ctc)
