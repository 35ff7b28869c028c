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


def test_sslasr_hubert_fbank_frames_labels_and_padding():
    from fairseq.data import Dictionary
    from fairseq.tasks.hubert_pretraining import HubertPretrainingConfig

    from sslasr_plugin.models.hubert import SslAsrHubertConfig, SslAsrHubertModel

    d = Dictionary()
    for i in range(5):
        d.add_symbol(str(i))
    cfg = SslAsrHubertConfig(label_rate=100, frontend="fbank", conv_feature_layers="[(32, 3, 2)]", final_dim=8,
                             encoder_layers=1, encoder_embed_dim=32, encoder_ffn_embed_dim=64,
                             encoder_attention_heads=2, conv_pos=16, conv_pos_groups=4)
    model = SslAsrHubertModel(cfg, HubertPretrainingConfig(label_rate=100), [d]).eval()
    assert model.feat2tar_ratio == 2.0  # 320 samples per frame, 160 per MFCC label
    waves = torch.randn(2, 16000)
    lengths = torch.tensor([16000, 9000])
    pad = torch.arange(16000)[None] >= lengths[:, None]
    with torch.no_grad():
        _, mask = model.extract_features(waves, padding_mask=pad, mask=False)
    assert (~mask).sum(1).tolist() == model.num_frames(lengths).tolist() == [48, 26]
    with torch.no_grad():
        alone, _ = model.extract_features(waves[1:, :9000], mask=False)
        batched, _ = model.extract_features(waves, padding_mask=pad, mask=False)
    assert alone.shape[1] == 26 and torch.allclose(alone[0], batched[1, :26], atol=1e-4)


def test_wav2vec_frontend_frames_and_bad_checkpoints():
    from fairseq.models.wav2vec.wav2vec import Wav2VecConfig, Wav2VecModel
    from omegaconf import OmegaConf

    from sslasr_plugin.models.frontend import Wav2VecFrontend, wav2vec_output_dim

    layers = [(16, 10, 5), (16, 8, 4), (16, 4, 2), (16, 4, 2), (16, 4, 2)]
    cfg = OmegaConf.merge(OmegaConf.structured(Wav2VecConfig), {
        "conv_feature_layers": str(layers), "aggregator": "gru", "gru_dim": 24, "infonce": True})
    frontend = Wav2VecFrontend(Wav2VecModel(cfg), [(32, 3, 2)], "context", layers, wav2vec_output_dim(cfg, "context"))
    for n in (3200, 16000, 16123):
        raw = frontend.wav2vec_output(torch.randn(1, n))
        assert raw.shape[1:] == (24, int(frontend.num_frames(torch.tensor(n))))
    assert frontend(torch.randn(1, 16000)).shape[1] == 32
    assert not any(p.requires_grad for p in frontend.wav2vec.parameters())
    with pytest.raises(ValueError, match="needs a vq-wav2vec checkpoint"):
        Wav2VecFrontend(Wav2VecModel(cfg), [(32, 3, 2)], "quantized", layers, 24)
