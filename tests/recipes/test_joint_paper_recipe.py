"""The joint paper recipe (+recipe=paper) and the paper's three ablations of it, each in a real
3-update fairseq-hydra-train run: fairseq drives sslasr_dual_schedule after every update, each
loss on its own schedule, and every row has the paper's LR ratio and optimizer states."""
import pytest

from tests.helpers import hydra_train
from sslasr_plugin.checkpoint import load_checkpoint

# row of the paper's table: (variant, CTC LR / contrastive LR, one shared Adam state)
ROWS = {
    "baseline": (None, 0.05, False),
    "update_ratio_5": ("update_ratio_5", 0.05, False),
    "lr_ratio_4": ("lr_ratio_4", 0.25, False),
    "single_optimizer": ("single_optimizer", 0.05, True),
}


@pytest.mark.slow
@pytest.mark.parametrize("row", sorted(ROWS))
def test_paper_recipe_rows_train_with_one_schedule_per_loss(tiny_corpus, tmp_path, row):
    variant, sup_lr_scale, shared = ROWS[row]
    hydra_train("examples/joint", "joint", tiny_corpus, tmp_path, "+recipe=paper",
                *([f"+variant={variant}"] if variant else []), "optimization.max_update=3",
                "lr_scheduler.final_lr_scale=0.3", "lr_scheduler.sup_phase_ratio=[0.0,0.0,1.0]",
                "lr_scheduler.sup_final_lr_scale=0.7")
    ckpt = load_checkpoint(tmp_path / "checkpoint_last.pt")
    group = ckpt["last_optimizer_state"]["param_groups"][0]
    # set after the 3rd (last) update: each schedule has reached its own final scale
    assert group["lr_factor"] == pytest.approx({"unsup": 0.3, "sup": 0.7})
    assert group["lr_scale"] == {"unsup": 1.0, "sup": sup_lr_scale}
    assert group["shared_state"] == shared
    kinds = {key for state in ckpt["last_optimizer_state"]["state"].values() for key in state}
    assert kinds == ({"shared"} if shared else {"unsup", "sup"}) or (row == "update_ratio_5" and kinds == {"unsup"})
