"""The joint paper recipe (+recipe=paper) in a real fairseq-hydra-train run: fairseq drives
sslasr_dual_schedule after every update, each loss on its own schedule."""
import pytest

from conftest import hydra_train
from sslasr_plugin.checkpoint import load_checkpoint


@pytest.mark.slow
def test_paper_recipe_trains_with_one_schedule_per_loss(tiny_corpus, tmp_path):
    hydra_train("examples/joint", "joint", tiny_corpus, tmp_path, "+recipe=paper", "+variant=single_optimizer",
                "lr_scheduler.final_lr_scale=0.3", "lr_scheduler.sup_phase_ratio=[0.0,0.0,1.0]",
                "lr_scheduler.sup_final_lr_scale=0.7")
    groups = load_checkpoint(tmp_path / "checkpoint_last.pt")["last_optimizer_state"]["param_groups"]
    # set after the 3rd (last) update: each schedule has reached its own final scale
    assert groups[0]["lr_factor"] == pytest.approx({"unsup": 0.3, "sup": 0.7})
    assert groups[0]["lr_scale"] == {"unsup": 1.0, "sup": 0.05} and groups[0]["shared_state"]
