import pytest
import torch

from sslasr_plugin.models.frontend import LogMelFrontend
from sslasr_plugin.models.wav2vec2 import SslAsrWav2Vec2Config, SslAsrWav2Vec2Model


@pytest.mark.parametrize("layers", [[(32, 3, 2)], [(16, 3, 2), (32, 3, 2)]])
def test_fbank_lengths_match_module_output(layers):
    cfg = SslAsrWav2Vec2Config(
        frontend="fbank", conv_feature_layers=str(layers), encoder_layers=1, encoder_embed_dim=32,
        encoder_ffn_embed_dim=64, encoder_attention_heads=2, conv_pos=8, conv_pos_groups=4, final_dim=16,
    )
    model = SslAsrWav2Vec2Model(cfg)
    assert isinstance(model.feature_extractor, LogMelFrontend)
    for samples in (1600, 2000, 16000, 16011, 47999):
        out = model.feature_extractor(torch.randn(1, samples))
        assert model._get_feat_extract_output_lengths(torch.tensor([samples])).item() == out.size(-1)


def test_padding_does_not_change_encoder_output():
    torch.manual_seed(0)
    cfg = SslAsrWav2Vec2Config(
        frontend="fbank", conv_feature_layers="[(32, 3, 2)]", encoder_layers=2, encoder_embed_dim=32,
        encoder_ffn_embed_dim=64, encoder_attention_heads=2, conv_pos=8, conv_pos_groups=4,
        layer_norm_first=True, final_dim=16,
    )
    model = SslAsrWav2Vec2Model(cfg).eval()
    short, long = torch.randn(1, 8000), torch.randn(1, 12000)
    batch = torch.zeros(2, 12000)
    batch[0, :8000], batch[1] = short, long
    pad = torch.zeros(2, 12000, dtype=torch.bool)
    pad[0, 8000:] = True
    with torch.no_grad():
        alone = model.extract_features(short, None)["x"]
        together = model.extract_features(batch, pad)
    frames = alone.size(1)
    assert together["padding_mask"][0].sum().item() == together["x"].size(1) - frames
    # The last frame's receptive field reaches into the padding (a 3-tap conv), so compare the rest.
    torch.testing.assert_close(together["x"][0, : frames - 1], alone[0, : frames - 1], atol=1e-4, rtol=1e-4)


def test_waveform_frontend_is_fairseqs():
    from fairseq.models.wav2vec.wav2vec2 import ConvFeatureExtractionModel

    model = SslAsrWav2Vec2Model(SslAsrWav2Vec2Config(
        conv_feature_layers="[(16, 10, 5), (16, 3, 2)]", encoder_layers=1, encoder_embed_dim=32,
        encoder_ffn_embed_dim=64, encoder_attention_heads=2, conv_pos=8, conv_pos_groups=4, final_dim=16,
    ))
    assert isinstance(model.feature_extractor, ConvFeatureExtractionModel)
    assert model._get_feat_extract_output_lengths(torch.tensor([1600])).item() == model.feature_extractor(
        torch.randn(1, 1600)).size(-1)


def test_channel_masking_that_fairseq_cannot_draw_is_refused():
    import pytest

    cfg = SslAsrWav2Vec2Config(encoder_embed_dim=256, mask_channel_prob=0.05, mask_channel_length=16)
    with pytest.raises(ValueError, match=r"0.05 \* 256 / 16 = 0.80 < 1"):
        SslAsrWav2Vec2Model(cfg)
