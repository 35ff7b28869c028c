import math

import pytest
import torch

from sslasr_plugin.criterions.csl_loss import sample_segment_frames, supervised_contrastive_loss


def _hand_case():
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], requires_grad=True)
    labels = torch.tensor([7, 8, 7])
    utterance = torch.tensor([0, 0, 1])
    return z, labels, utterance


def test_loss_matches_hand_computation_batch_negatives():
    z, labels, utt = _hand_case()
    loss, stats = supervised_contrastive_loss(z, labels, utt, temperature=1.0, negatives="batch")
    # Anchors 0 and 2 each: -log(e^1 / (e^0 + e^1)); anchor 1 has no positive and is skipped.
    assert loss.item() == pytest.approx(2 * math.log(1 + math.exp(-1)), rel=1e-6)
    assert stats == {"anchors": 2, "frames": 3, "positives_per_anchor": 1.0, "retrieval_correct": 2}
    loss.backward()
    # d/dz0 of [-z0.z2 + log(e^{z0.z1} + e^{z0.z2})] plus anchor 2's term -z0 + softmax-weighted z0.
    w1, w2 = 1 / (1 + math.e), math.e / (1 + math.e)
    expected_z0 = (-z[2] + w1 * z[1] + w2 * z[2]) + (-z[2] + w2 * z[2])
    torch.testing.assert_close(z.grad[0], expected_z0.detach())


def test_loss_same_utterance_negatives():
    z, labels, utt = _hand_case()
    loss, _ = supervised_contrastive_loss(z, labels, utt, temperature=1.0, negatives="same_utterance")
    # Anchor 2 (utterance 1) sees only its positive: log 1 = 0.
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1)), rel=1e-6)


def test_loss_matches_brute_force_and_temperature():
    g = torch.Generator().manual_seed(0)
    z = torch.nn.functional.normalize(torch.randn(12, 5, generator=g, dtype=torch.float64), dim=-1)
    labels = torch.randint(0, 4, (12,), generator=g)
    utt = torch.randint(0, 3, (12,), generator=g)
    for mode in ("batch", "same_utterance"):
        loss, _ = supervised_contrastive_loss(z, labels, utt, temperature=0.3, negatives=mode)
        ref = 0.0
        for i in range(12):
            pos = [p for p in range(12) if p != i and labels[p] == labels[i]]
            allowed = [a for a in range(12) if a != i and (mode == "batch" or a in pos or utt[a] == utt[i])]
            if not pos:
                continue
            denom = sum(math.exp(float(z[i] @ z[a]) / 0.3) for a in allowed)
            ref += -sum(math.log(math.exp(float(z[i] @ z[p]) / 0.3) / denom) for p in pos) / len(pos)
        assert loss.item() == pytest.approx(ref, rel=1e-9)
    with pytest.raises(ValueError, match="negatives must be one of"):
        supervised_contrastive_loss(z, labels, utt, negatives="random")


def test_one_frame_per_segment_inside_valid_frames():
    labels = torch.tensor([[1, 1, 2, 2, 2, 1, 0, 0], [1, 3, 3, 3, 3, 3, 3, 3]])
    lengths = torch.tensor([6, 8])
    segments = {(0, (0, 1)), (0, (2, 3, 4)), (0, (5,)), (1, (0,)), (1, (1, 2, 3, 4, 5, 6, 7))}
    seen = set()
    g = torch.Generator().manual_seed(1)
    for _ in range(200):
        utt, frame = sample_segment_frames(labels, lengths, g)
        assert len(utt) == len(segments)
        picks = {(int(u), int(f)) for u, f in zip(utt, frame)}
        for u, frames in segments:
            assert sum((u, f) in picks for f in frames) == 1
        seen |= picks
    # Uniform within a segment: every valid frame gets drawn; padded frames never.
    assert seen == {(0, f) for f in range(6)} | {(1, f) for f in range(8)}


def test_criterion_projects_only_sampled_frames_with_the_same_loss_and_gradients():
    """sslasr_csl applies the projection to the frames its loss samples; the loss and every
    gradient equal those of projecting all frames first (the head is frame-wise)."""
    from types import SimpleNamespace

    from sslasr_plugin.criterions.csl import CslCriterion, CslCriterionConfig
    from sslasr_plugin.criterions.frame_targets import aligned_frame_targets
    from sslasr_plugin.models.frame_model import SslAsrFrameModel, SslAsrFrameModelConfig

    torch.manual_seed(0)
    model = SslAsrFrameModel(SslAsrFrameModelConfig(
        frontend="fbank", conv_feature_layers="[(32, 3, 2)]", encoder_layers=1, encoder_embed_dim=32,
        encoder_ffn_embed_dim=64, encoder_attention_heads=2, conv_pos=8, conv_pos_groups=4, final_dim=16,
        projection_hidden_dim=48, projection_dim=8, mask_prob=0.0, dropout=0.0, attention_dropout=0.0,
    ))
    source, padding = torch.randn(3, 8000), torch.zeros(3, 8000, dtype=torch.bool)
    padding[1, 6000:] = True
    frames = model._get_feat_extract_output_lengths(torch.tensor([8000, 6000, 8000]))
    pad = 1
    target = torch.full((3, int(frames.max())), pad)
    for i, n in enumerate(frames.tolist()):
        target[i, :n] = torch.randint(4, 8, (n // 4 + 1,)).repeat_interleave(4)[:n]  # segments of 4 frames
    sample = {"net_input": {"source": source, "padding_mask": padding}, "target_list": [target], "id": torch.arange(3)}
    task = SimpleNamespace(dictionaries=[SimpleNamespace(pad=lambda: pad)])
    for negatives in ("same_utterance", "batch"):
        criterion = CslCriterion(CslCriterionConfig(temperature=0.2, negatives=negatives), task)
        projected = []
        hook = model.head.register_forward_hook(lambda m, args, out: projected.append(args[0].shape[:-1].numel()))
        torch.manual_seed(1)
        loss, size, log = criterion(model, sample)
        hook.remove()
        assert projected == [log["segments"]] and log["segments"] < int(frames.sum()) / 3  # one frame per segment
        model.zero_grad()
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        # reference: every frame projected, then the same sampled frames taken
        torch.manual_seed(1)
        z, mask = model.frame_outputs(source, padding)
        z, labels, lengths = aligned_frame_targets(z, mask, target, pad, sample["id"])
        utt, frame = sample_segment_frames(labels, lengths)
        ref, stats = supervised_contrastive_loss(z[utt, frame], labels[utt, frame], utt, 0.2, negatives)
        model.zero_grad()
        ref.backward()
        assert loss.item() == pytest.approx(ref.item(), rel=1e-6) and size == stats["anchors"] > 0
        assert {n for n, p in model.named_parameters() if p.grad is not None} == set(grads)
        assert any(n.startswith("head.") for n in grads)
        for n, p in model.named_parameters():
            if p.grad is not None:
                torch.testing.assert_close(grads[n], p.grad, rtol=1e-5, atol=1e-7)
