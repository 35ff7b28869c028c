"""CSL validation (and so checkpoint selection) sees unmasked input and the same sampled frames
every time; training keeps masking and fresh frame draws."""
from types import SimpleNamespace

import torch
from fairseq.data import Dictionary

from sslasr_plugin.criterions.csl import CslCriterion, CslCriterionConfig
from sslasr_plugin.models.frame_model import SslAsrFrameModel, SslAsrFrameModelConfig


def _model_criterion_sample():
    torch.manual_seed(0)
    model = SslAsrFrameModel(SslAsrFrameModelConfig(
        frontend="fbank", conv_feature_layers="[(32, 3, 2)]", encoder_layers=1, encoder_embed_dim=32,
        encoder_ffn_embed_dim=64, encoder_attention_heads=2, conv_pos=8, conv_pos_groups=4, final_dim=16,
        projection_hidden_dim=16, projection_dim=8, mask_prob=0.65, mask_length=2, dropout=0.0,
        attention_dropout=0.0, activation_dropout=0.0, dropout_input=0.0, dropout_features=0.0,
    ))
    dictionary = Dictionary()
    for label in "abcd":
        dictionary.add_symbol(label)
    criterion = CslCriterion(CslCriterionConfig(), SimpleNamespace(dictionaries=[dictionary]))
    source = torch.randn(2, 8000)
    frames = model.encoder_frames(source)[0].size(1)
    # runs of 3 frames of one label, so every utterance has several segments and positives
    labels = torch.tensor([dictionary.index(c) for c in "abcd"]).repeat_interleave(3).repeat(frames)[:frames]
    sample = {"id": torch.arange(2), "net_input": {"source": source, "padding_mask": None},
              "target_list": [torch.stack([labels, labels.roll(3)])]}
    return model, criterion, sample


def test_validation_loss_is_deterministic_across_calls():
    model, criterion, sample = _model_criterion_sample()
    model.eval()
    with torch.no_grad():
        first, second = criterion(model, sample)[0], criterion(model, sample)[0]
    assert first.item() == second.item()


def test_training_still_masks():
    model, criterion, sample = _model_criterion_sample()
    source = sample["net_input"]["source"]
    model.eval()
    with torch.no_grad():
        unmasked = model.encoder_frames(source)[0]
        model.train()
        masked = model.encoder_frames(source)[0]
        explicit = model.eval().encoder_frames(source, mask=True)[0]
    assert not torch.equal(unmasked, masked)
    assert not torch.equal(unmasked, explicit)  # an explicit mask=True still masks in eval mode
