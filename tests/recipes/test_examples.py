"""Every config under examples/ runs, tiny, through the real fairseq-hydra-train and
fairseq-generate command lines."""
import re
import shutil

import pytest
import torch
from omegaconf import OmegaConf

from sslasr_plugin.checkpoint import load_checkpoint
from tests.helpers import REPO, compose_example, generate, hydra_train, run_cli

EXAMPLES = REPO / "examples"
# How each example is exercised below; a config missing here fails test_every_example_is_run.
RUN_BY = {
    "ctc/scratch_fbank": "test_scratch_ctc_trains_and_decodes",
    "ctc/finetune_w2v": "test_finetune_from_plugin_pretraining",
    "wav2vec2/pretrain_fbank": "test_finetune_from_plugin_pretraining",
    "csl/csl": "test_csl_runs.py::test_pretrain_finetune_decode",
    "csl/ce_pl": "test_csl_runs.py::test_pretrain_finetune_decode",
    "csl/teacher": "test_frame_teacher_runs.py::test_teacher_labels_unlabeled_audio_and_csl_trains_on_them",
    "joint/joint": "test_joint_runs.py::test_config_trains_on_schedule_and_decodes",
    **{f"joint/variant/{v}": "test_joint_runs.py::test_config_trains_on_schedule_and_decodes"
       for v in ("two_stage", "supervised_only", "single_optimizer", "lr_ratio_4", "update_ratio_5")},
    "slimipl/slimipl": "test_slimipl_runs.py::test_config_trains_pseudo_labels_and_decodes",
    **{f"slimipl/variant/{v}": "test_slimipl_runs.py::test_config_trains_pseudo_labels_and_decodes"
       for v in ("supervised_only", "ema", "soft", "soft_ctc_mix", "soft_blank", "soft_temperature", "soft_entropy",
                 "soft_sampled")},
    **{f"ssl/{c}": "test_ssl_runs.py::test_wav2vec1_family_pretrains_finetunes_frozen_and_decodes"
       for c in ("cpc", "wav2vec", "vq_wav2vec_gumbel", "vq_wav2vec_kmeans", "finetune_wav2vec1")},
    "ssl/hubert_iter1": "test_ssl_runs.py::test_hubert_iteration_1_then_2_then_finetune_and_decode",
    "ssl/hubert_iter2": "test_ssl_runs.py::test_hubert_iteration_1_then_2_then_finetune_and_decode",
    **{f"ssl/gpu/{c}": "test_ssl_runs.py::test_gpu_size_variant_builds_at_paper_size"
       for c in ("cpc", "wav2vec", "vq_wav2vec_gumbel", "vq_wav2vec_kmeans", "hubert_iter1", "hubert_iter2")},
    "wav2vec2/gpu/pretrain_fbank": "test_ssl_runs.py::test_gpu_size_variant_builds_at_paper_size",
    "joint/recipe/paper": "test_joint_paper_recipe.py::test_paper_recipe_rows_train_with_one_schedule_per_loss",
    **{f"{c}/gpu/{c}": "test_paper_recipe_models.py and unit/test_recipe_cards.py" for c in ("joint", "csl", "slimipl")},
}


def test_every_example_is_run():
    configs = {str(p.relative_to(EXAMPLES).with_suffix("")) for p in EXAMPLES.rglob("*.yaml")}
    assert configs == set(RUN_BY), "list each new example config in RUN_BY and run it in a test"


@pytest.mark.slow
@pytest.mark.parametrize("method,name,overrides", [("joint", "joint", ["+variant=two_stage"]),
                                                   ("ssl", "hubert_iter1", ["+gpu=hubert_iter1"])])
def test_fairseq_hydra_train_composes_as_the_unit_tests_do_from_any_directory(method, name, overrides, tmp_path):
    """tests/unit/test_example_configs.py composes in-process; the command line, launched elsewhere
    with the shared settings found through hydra.searchpath, gives the same job config."""
    proc = run_cli(["fairseq-hydra-train", "--config-dir", EXAMPLES / method, "--config-name", name, *overrides,
                    "--cfg", "job"], cwd=tmp_path)
    composed = compose_example(EXAMPLES / method, name, *overrides)
    del composed["hydra"]
    assert OmegaConf.to_container(OmegaConf.create(proc.stdout)) == composed


def _assert_decodes(corpus, checkpoint, subset):
    proc = generate(corpus, checkpoint, subset)
    assert re.search(rf"Generate {subset} with beam=1: WER: \d+\.\d+", proc.stdout + proc.stderr)
    refs = [line for line in proc.stdout.splitlines() if line.startswith("T-")]
    assert len(refs) == len((corpus / f"{subset}.wrd").read_text().splitlines())
    assert len([line for line in proc.stdout.splitlines() if line.startswith("D-")]) == len(refs)


@pytest.mark.slow
def test_scratch_ctc_trains_and_decodes(ctc_checkpoint, tiny_corpus):
    for subset in ("test", "test_ood"):
        _assert_decodes(tiny_corpus, ctc_checkpoint, subset)


@pytest.fixture(scope="module")
def plugin_w2v_checkpoint(tiny_corpus, tmp_path_factory):
    save_dir = tmp_path_factory.mktemp("w2v")
    hydra_train("examples/wav2vec2", "pretrain_fbank", tiny_corpus, save_dir)
    return save_dir / "checkpoint_last.pt"


def _finetune(corpus, w2v_checkpoint, save_dir, *overrides):
    hydra_train("examples/ctc", "finetune_w2v", corpus, save_dir, f"model.w2v_path={w2v_checkpoint}", *overrides)
    finetuned = load_checkpoint(save_dir / "checkpoint_last.pt")
    pretrained = load_checkpoint(w2v_checkpoint)
    # Frozen for the first freeze_finetune_updates: the encoder still holds the pre-trained weights.
    name = "encoder.layers.1.fc1.weight"
    assert torch.equal(finetuned["model"][f"w2v_encoder.w2v_model.{name}"], pretrained["model"][name])
    return save_dir / "checkpoint_last.pt"


@pytest.mark.slow
def test_finetune_from_plugin_pretraining(plugin_w2v_checkpoint, tiny_corpus, tmp_path):
    _assert_decodes(tiny_corpus, _finetune(tiny_corpus, plugin_w2v_checkpoint, tmp_path / "ft"), "test")


@pytest.mark.slow
def test_finetune_from_stock_fairseq_wav2vec2(tiny_corpus, tmp_path):
    stock = tmp_path / "stock"
    hydra_train(str(REPO / "tests" / "recipes" / "configs"), "stock_wav2vec2_tiny", tiny_corpus, stock, user_dir=None)
    assert load_checkpoint(stock / "checkpoint_last.pt")["cfg"]["model"]["_name"] == "wav2vec2"
    # fairseq raises when mask_channel_prob * channels / mask_channel_length rounds to no mask:
    # the tiny stock encoder has only 32 channels.
    finetuned = _finetune(tiny_corpus, stock / "checkpoint_last.pt", tmp_path / "ft", "model.mask_channel_length=2")
    _assert_decodes(tiny_corpus, finetuned, "test")


@pytest.mark.slow
def test_finetune_from_stock_fairseq_hubert(tiny_corpus, tmp_path):
    import numpy as np

    labels = tmp_path / "km"
    labels.mkdir()
    rng = np.random.default_rng(0)
    for split in ("unlabeled", "valid"):
        rows = (tiny_corpus / f"{split}.tsv").read_text().splitlines()[1:]
        frames = [(int(r.split("\t")[1]) - 400) // 320 + 1 for r in rows]  # the conv encoder's 50 Hz frames
        (labels / f"{split}.km").write_text("".join(" ".join(map(str, rng.integers(0, 8, n))) + "\n" for n in frames))
    (labels / "dict.km.txt").write_text("".join(f"{i} 1\n" for i in range(8)))
    stock = tmp_path / "stock"
    hydra_train(str(REPO / "tests" / "recipes" / "configs"), "stock_hubert_tiny", tiny_corpus, stock, f"task.label_dir={labels}",
                user_dir=None)
    assert load_checkpoint(stock / "checkpoint_last.pt")["cfg"]["model"]["_name"] == "hubert"
    finetuned = _finetune(tiny_corpus, stock / "checkpoint_last.pt", tmp_path / "ft", "model.mask_channel_length=2")
    shutil.rmtree(labels)  # decoding must not need the pre-training labels
    _assert_decodes(tiny_corpus, finetuned, "test")
