"""The new paper-size configs build the papers' models: +recipe=paper +gpu=joint the authors'
~100M base model, +gpu=slimipl slimIPL's ~270M 36-layer one (training them needs a GPU)."""
import pytest

from tests.unit.test_recipe_cards import compose

# config: (config dir, name, overrides, million parameters low, high)
PAPER_MODELS = {
    "joint": ("examples/joint", "joint", ("+recipe=paper", "+gpu=joint"), 90, 100),
    "slimipl": ("examples/slimipl", "slimipl", ("+gpu=slimipl",), 250, 270),
}


@pytest.mark.slow
@pytest.mark.parametrize("config", sorted(PAPER_MODELS))
def test_paper_size_model_builds(config, tiny_corpus):
    from fairseq import tasks
    from omegaconf import OmegaConf

    config_dir, name, overrides, low, high = PAPER_MODELS[config]
    cfg = OmegaConf.create(compose(config_dir, name, (*overrides, f"task.data={tiny_corpus}")))
    model = tasks.setup_task(cfg.task).build_model(cfg.model)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    assert low <= params <= high, f"{config}: {params:.1f} M parameters"
