"""slimIPL and soft pseudo-labels: the cache, the collapse detector, the soft loss, the cache across ranks."""
import math
import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from fairseq.data import Dictionary

from sslasr_plugin.criterions.pl_ctc import PlCtcConfig, PlCtcCriterion
from sslasr_plugin.data.pl_cache import PseudoLabelCache
from sslasr_plugin.decoding.online_labels import CollapseDetector, LabelStats, label_batch, label_stats, oracle_errors
from tests.helpers import free_port

# ---------------------------------------------------------------------------- cache


def _plans(cache, n):
    return [cache.plan() for _ in range(n)]


def test_cache_fills_then_visits_every_slot_once_per_pass():
    cache = PseudoLabelCache(size=4, replace_prob=0.0, seed=3)
    for i in range(4):
        assert cache.plan() == (i, True)
        cache.put(i, f"batch{i}")
    assert cache.full and len(cache) == 4
    passes = [[slot for slot, _ in _plans(cache, 4)] for _ in range(5)]
    assert all(sorted(p) == [0, 1, 2, 3] for p in passes)
    assert len({tuple(p) for p in passes}) > 1, "the order is reshuffled between passes"
    assert cache.entries == [f"batch{i}" for i in range(4)], "replace_prob=0 keeps every entry"


def test_cache_replacement_probability():
    p, n = 0.1, 20000
    cache = PseudoLabelCache(size=10, replace_prob=p, seed=0)
    for i in range(10):
        cache.put(*(cache.plan()[0], i))
    replaced = sum(r for _, r in _plans(cache, n))
    assert abs(replaced - p * n) < 4 * math.sqrt(n * p * (1 - p))
    always = PseudoLabelCache(size=2, replace_prob=1.0, seed=0)
    always.put(0, "a"), always.put(1, "b")
    assert all(r for _, r in _plans(always, 50))


def test_cache_deterministic_per_seed_and_restored_mid_pass():
    def filled(seed):
        cache = PseudoLabelCache(size=5, replace_prob=0.3, seed=seed)
        for i in range(5):
            cache.put(cache.plan()[0], i)
        return cache

    a, b = filled(1), filled(1)
    assert _plans(a, 40) == _plans(b, 40)
    assert _plans(filled(1), 40) != _plans(filled(2), 40)
    _plans(a, 7)  # mid-pass
    restored = PseudoLabelCache(size=5, replace_prob=0.3, seed=1)
    restored.load_state_dict(a.state_dict())
    assert restored.entries == a.entries and restored.reads == a.reads
    assert _plans(restored, 30) == _plans(a, 30)


def test_cache_smaller_on_resume_and_bad_settings():
    cache = PseudoLabelCache(size=4, replace_prob=0.1, seed=0)
    for i in range(4):
        cache.put(i, i)
    smaller = PseudoLabelCache(size=2, replace_prob=0.1, seed=0)
    smaller.load_state_dict(cache.state_dict())
    assert smaller.entries == [0, 1] and smaller.full
    with pytest.raises(ValueError):
        PseudoLabelCache(size=0, replace_prob=0.1, seed=0)
    with pytest.raises(ValueError):
        PseudoLabelCache(size=2, replace_prob=1.5, seed=0)
    with pytest.raises(IndexError):
        cache.put(9, "x")


# ----------------------------------------------------- labels, statistics, collapse

BLANK = 0


def _dictionary():
    d = Dictionary()  # <s>=0 (CTC blank), <pad>=1, </s>=2, <unk>=3
    for c in "ab|":
        d.add_symbol(c)
    return d  # a=4, b=5, |=6


class FixedModel(torch.nn.Module):
    """A CTC 'model' whose logits (T, B, V) are a parameter: forward ignores the audio."""

    def __init__(self, logits, padding_mask=None):
        super().__init__()
        self.logits = torch.nn.Parameter(logits.clone())
        self.padding_mask = padding_mask

    def forward(self, **net_input):
        return {"encoder_out": self.logits, "padding_mask": self.padding_mask}

    def get_normalized_probs(self, net_output, log_probs):
        logits = net_output["encoder_out"].float()
        if net_output["padding_mask"] is not None:  # as fairseq's Wav2VecCtc: padded frames are blank, -inf else
            fill = torch.full((logits.size(-1),), float("-inf"))
            fill[BLANK] = 0.0
            logits = torch.where(net_output["padding_mask"].T[..., None], fill, logits)
        return torch.log_softmax(logits, dim=-1)


def _frames(path, vocab=7, peak=5.0):
    """Logits (T, 1, V) whose argmax follows ``path``."""
    logits = torch.zeros(len(path), 1, vocab)
    for t, k in enumerate(path):
        logits[t, 0, k] = peak
    return logits


def test_label_batch_greedy_tokens_stats_and_mode_restored():
    # utterance 0: a a _ b b _ </s> _ ; utterance 1: 2 valid frames, a _, then padding
    logits = torch.cat([_frames([4, 4, 0, 5, 5, 0, 2, 0]), _frames([4, 0, 0, 0, 0, 0, 0, 0])], dim=1)
    pad = torch.zeros(2, 8, dtype=torch.bool)
    pad[1, 2:] = True
    model = FixedModel(logits, pad).train()
    net_input = {"source": torch.zeros(2, 160), "padding_mask": torch.zeros(2, 160, dtype=torch.bool)}
    out = label_batch(model, net_input, BLANK, drop=(1, 2), soft=True, sample_rate=16000, oracle=[[4, 5, 5], None])
    assert model.training
    assert [t.tolist() for t in out.tokens] == [[4, 5], [4]]  # </s> dropped
    assert [lp.shape for lp in out.log_probs] == [(8, 7), (2, 7)]
    s = out.stats
    assert (s.utterances, s.frames, s.blank_frames, s.tokens) == (2, 10, 4, 3)  # blanks at t=2,5,7 and 1 in utt 1
    p = torch.softmax(torch.tensor([5.0] + [0.0] * 6), 0)
    assert s.entropy == pytest.approx(10 * float(-(p * p.log()).sum()), rel=1e-5)
    assert s.seconds == pytest.approx(320 / 16000)
    assert (s.oracle_errors, s.oracle_tokens) == (1, 3)  # [a b] vs [a b b]


def test_label_errors_are_counted_per_unlabeled_subset():
    from sslasr_plugin.tasks.slimipl import SlimIplTask

    task = SimpleNamespace(_subsets=[("unlabeled", 0), ("unlabeled_ood", 5)])
    rows = torch.tensor([4, 5, 7, 0])  # stream rows: the first subset holds 0-4, the second 5 on
    hyps = [torch.tensor([1, 2, 3]), torch.tensor([1, 2]), torch.tensor([9]), torch.tensor([1])]
    refs = [[1, 2, 4], [1, 2, 3, 4], None, [1, 1]]  # 1 error of 3; 2 of 4; unknown; 1 of 2
    errors = oracle_errors(hyps, refs)
    assert errors == [1, 2, None, 1]
    out = SlimIplTask._subset_errors(task, rows, errors, refs)
    assert out == {"pl_sub_errors:unlabeled": 2, "pl_sub_tokens:unlabeled": 5,
                   "pl_sub_errors:unlabeled_ood": 2, "pl_sub_tokens:unlabeled_ood": 4}
    assert SlimIplTask._subset_errors(SimpleNamespace(_subsets=[("unlabeled", 0)]), rows, errors, refs) == {}
    # the batch's sums count the same errors (the known references only)
    stats = label_stats(torch.zeros(4, 3, 10), torch.tensor([3, 3, 3, 3]), hyps, BLANK, 1.0, refs)
    assert (stats.oracle_errors, stats.oracle_tokens) == (4, 9)
    assert (label_stats(torch.zeros(4, 3, 10), torch.tensor([3] * 4), hyps, BLANK, 1.0).oracle_tokens) == 0


def test_collapse_detector_fires_on_collapsed_and_not_on_healthy_distribution():
    # reference: 10 tokens per second; a batch = 1 s of audio, 50 frames
    def stats(path):
        lprobs = torch.log_softmax(_frames(path).transpose(0, 1), -1)
        tokens = [torch.tensor([k for t, k in enumerate(path) if k != BLANK and (t == 0 or path[t - 1] != k)])]
        return label_stats(lprobs, torch.tensor([len(path)]), tokens, BLANK, seconds=1.0)

    healthy = stats([4, 0, 0, 0, 0] * 10)  # 10 tokens / s
    collapsed = stats([0] * 50)  # blank everywhere
    one_token = stats([4] * 50)  # one token per run
    assert (healthy.tokens, collapsed.tokens, one_token.tokens) == (10, 0, 1)
    detector = CollapseDetector(reference_rate=10.0, min_ratio=0.5, window=3)
    assert [detector.update(healthy, u) for u in range(10)] == [None] * 10
    # window of 3: one collapsed batch leaves 2/3 of the rate, two leave 1/3 < 0.5
    messages = [detector.update(collapsed, u) for u in range(10, 13)]
    assert messages[0] is None and messages[2] is None and detector.collapsed
    assert "PSEUDO-LABEL COLLAPSE at update 11" in messages[1] and "0.33x the labeled data's 10.00" in messages[1]
    assert detector.update(healthy, 13) is None  # 1/3 of the rate
    assert "recovered at update 14" in detector.update(healthy, 14)
    all_blank = CollapseDetector(10.0, 0.5, window=1)
    assert "blank argmax on 100.0% of frames" in all_blank.update(collapsed, 0)
    # hysteresis: 0.55x the reference does not end a collapse, 0.65x (> 1.2 x 0.5) does
    assert all_blank.update(LabelStats(tokens=55, seconds=10.0), 1) is None and all_blank.collapsed
    assert "recovered at update 2" in all_blank.update(LabelStats(tokens=65, seconds=10.0), 2)
    fresh = CollapseDetector(10.0, 0.5, window=2)
    assert fresh.update(one_token, 0) is None and "COLLAPSE" in fresh.update(one_token, 1)
    # the message names the kind: confident blanks, or distributions gone flat (the entropy bonus's
    # collapse in the self-labeling loop): 7 outputs, uniform frames have entropy ln 7
    flat_lprobs = torch.full((1, 50, 7), -math.log(7))
    flat = label_stats(flat_lprobs, torch.tensor([50]), [torch.tensor([], dtype=torch.long)], BLANK, seconds=1.0)
    assert flat.entropy / flat.frames == pytest.approx(math.log(7))
    blank_message = CollapseDetector(10.0, 0.5, window=1, vocab_size=7).update(collapsed, 0)
    flat_message = CollapseDetector(10.0, 0.5, window=1, vocab_size=7).update(flat, 0)
    assert "trains on its own blanks" in blank_message and "flattening" not in blank_message
    assert "flattening toward uniform (entropy 100% of" in flat_message and "soft_entropy_weight" in flat_message
    assert "trains on its own blanks" in CollapseDetector(10.0, 0.5, window=1).update(flat, 0)  # vocabulary unknown


# ------------------------------------------------------------------ soft loss


def _criterion(**cfg):
    task = SimpleNamespace(target_dictionary=_dictionary(), blank_symbol="<s>")
    return PlCtcCriterion(PlCtcConfig(sentence_avg=True, zero_infinity=True, **cfg), task)


def _soft_sample(teacher_logits, target):
    lprobs = torch.log_softmax(teacher_logits, -1).transpose(0, 1)  # (B, T, V)
    return {"mode": "pl", "id": torch.arange(lprobs.size(0)), "net_input": {"source": torch.zeros(1, 10)},
            "pl_log_probs": lprobs, "pl_frames": torch.full((lprobs.size(0),), lprobs.size(1)),
            "target": torch.tensor([target]), "target_lengths": torch.tensor([len(target)]),
            "ntokens": len(target)}


def _hand_soft(student, teacher, scale, temperature=1.0, blank_weight=1.0):
    """The soft loss of one utterance, frame by frame in plain Python."""
    total, weights = 0.0, 0.0
    for t in range(student.size(0)):
        z = student[t, 0].tolist()
        lse = math.log(sum(math.exp(v) for v in z))
        tq = [v / temperature for v in torch.log_softmax(teacher[t, 0], -1).tolist()]
        tlse = math.log(sum(math.exp(v) for v in tq))
        q = [math.exp(v - tlse) for v in tq]
        ce = -sum(qv * (zv - lse) for qv, zv in zip(q, z))
        w = blank_weight if max(range(len(q)), key=q.__getitem__) == BLANK else 1.0
        total, weights = total + w * ce, weights + w
    return scale * total / weights


@pytest.mark.parametrize("temperature,blank_weight", [(1.0, 1.0), (0.5, 1.0), (1.0, 0.1), (0.7, 0.0)])
def test_soft_loss_matches_hand_computation(temperature, blank_weight):
    torch.manual_seed(0)
    student, teacher = torch.randn(4, 1, 7), torch.randn(4, 1, 7)
    teacher[1, 0, BLANK] = teacher[3, 0, BLANK] = 6.0  # two blank frames in the teacher
    crit = _criterion(soft_scale=3.0, soft_temperature=temperature, soft_blank_weight=blank_weight).train()
    loss, size, log = crit(FixedModel(student), _soft_sample(teacher, [4, 5]))
    assert size == 1 and log["pl_loss"] == pytest.approx(loss.item())
    assert loss.item() == pytest.approx(_hand_soft(student, teacher, 3.0, temperature, blank_weight), rel=1e-5)


def test_soft_loss_of_a_padded_batch_is_the_sum_over_its_utterances():
    torch.manual_seed(3)
    student, teacher = torch.randn(5, 2, 7), torch.randn(5, 2, 7)
    pad = torch.zeros(2, 5, dtype=torch.bool)
    pad[1, 3:] = True  # utterance 1 has 3 frames
    sample = _soft_sample(teacher, [4])
    sample["pl_log_probs"][1, 3:] = 0.0  # the task pads cached labels with zeros
    sample.update(pl_frames=torch.tensor([5, 3]), target=torch.tensor([[4], [5]]), target_lengths=torch.tensor([1, 1]))
    crit = _criterion(soft_ctc_weight=0.5, soft_entropy_weight=0.1)
    loss, size, _ = crit(FixedModel(student, pad), sample)
    singles = []
    for b, frames, target in ((0, 5, [4]), (1, 3, [5])):
        one = _soft_sample(teacher[:frames, b:b + 1], target)
        singles.append(crit(FixedModel(student[:frames, b:b + 1]), one)[0].item())
    assert size == 2 and math.isfinite(loss.item())
    assert loss.item() == pytest.approx(sum(singles), rel=1e-5)


def test_soft_loss_gradient_is_weighted_p_minus_q():
    torch.manual_seed(1)
    student, teacher = torch.randn(3, 1, 7), torch.randn(3, 1, 7)
    model = FixedModel(student)
    loss, _, _ = _criterion(soft_scale=2.0)(model, _soft_sample(teacher, [4]))
    loss.backward()
    expected = 2.0 / 3 * (torch.softmax(student, -1) - torch.softmax(teacher, -1))
    assert torch.allclose(model.logits.grad, expected, atol=1e-6)


def test_soft_ctc_mix_and_entropy_bonus():
    torch.manual_seed(2)
    student, teacher = torch.randn(2, 1, 7), torch.randn(2, 1, 7)
    p = torch.softmax(student[:, 0], -1)
    # CTC of target [a] over 2 frames: paths (a,a), (a,_), (_,a)
    a = 4
    ctc = -math.log(p[0, a] * p[1, a] + p[0, a] * p[1, BLANK] + p[0, BLANK] * p[1, a])
    soft = _hand_soft(student, teacher, 20.0)
    loss, _, _ = _criterion(soft_ctc_weight=0.25)(FixedModel(student), _soft_sample(teacher, [a]))
    assert loss.item() == pytest.approx(0.75 * soft + 0.25 * ctc, rel=1e-5)
    entropy = float(-(p * p.log()).sum(-1).mean())
    loss, _, _ = _criterion(soft_entropy_weight=0.1)(FixedModel(student), _soft_sample(teacher, [a]))
    assert loss.item() == pytest.approx(soft - 20.0 * 0.1 * entropy, rel=1e-5)


def test_sampled_paths_follow_the_frame_distributions():
    from sslasr_plugin.decoding.ctc import sample_paths

    # 4000 one-frame utterances with q = (blank 0.5, a 0.3, b 0.2): shares of the transcripts
    # (three unequal classes: noise with the wrong sign, argmax(l - G), would give other shares)
    q = torch.full((4000, 1, 7), 1e-9)
    q[:, 0, BLANK], q[:, 0, 4], q[:, 0, 5] = 0.5, 0.3, 0.2
    lprobs, lengths = q.log(), torch.ones(4000, dtype=torch.long)
    paths = sample_paths(lprobs, lengths, BLANK, torch.Generator().manual_seed(0))
    assert all(p.tolist() in ([], [4], [5]) for p in paths)
    for token, expected in ((4, 0.3), (5, 0.2)):
        assert abs(sum(p.tolist() == [token] for p in paths) / 4000 - expected) < 0.025
    again = sample_paths(lprobs, lengths, BLANK, torch.Generator().manual_seed(0))
    other = sample_paths(lprobs, lengths, BLANK, torch.Generator().manual_seed(1))
    assert [p.tolist() for p in again] == [p.tolist() for p in paths] != [p.tolist() for p in other]
    # a path is collapsed as CTC collapses one (a a _ a b b -> a a b); frames past the length are not read
    peaked = torch.log_softmax(_frames([4, 4, 0, 4, 5, 5, 6], peak=60.0), -1).transpose(0, 1)
    assert sample_paths(peaked, torch.tensor([6]), BLANK)[0].tolist() == [4, 4, 5]


def test_soft_ctc_on_sampled_transcripts():
    torch.manual_seed(4)
    student = torch.randn(2, 1, 7)
    p = torch.softmax(student[:, 0], -1)
    a = 4
    ctc = -math.log(p[0, a] * p[1, a] + p[0, a] * p[1, BLANK] + p[0, BLANK] * p[1, a])
    # a teacher sure of (a, blank): every sampled path is [a], whatever the greedy target says
    teacher = _frames([a, BLANK], peak=60.0)
    crit = _criterion(soft_ctc_weight=1.0, soft_ctc_target="sampled").train()
    loss, _, log = crit(FixedModel(student), _soft_sample(teacher, [5, 6, 5]))
    assert loss.item() == pytest.approx(ctc, rel=1e-5) and log["pl_sampled_tokens"] == 1
    # pad and eos are never targets; an uncertain teacher gives transcripts that vary between updates
    eos = _frames([2, 2], peak=60.0)
    assert _criterion().sampled_targets(torch.log_softmax(eos, -1).transpose(0, 1), torch.tensor([2]))[1].tolist() == [0]
    uncertain = torch.zeros(30, 1, 7)
    uncertain[:, 0, 1:3] = -60.0  # pad and eos out; blank, unk, a, b, | equally likely
    draws = {tuple(_criterion().sampled_targets(torch.log_softmax(uncertain, -1).transpose(0, 1),
                                                torch.tensor([30]))[0].tolist()) for _ in range(5)}
    assert len(draws) == 5 and all(1 not in d and 2 not in d for d in draws)
    # the temperature applies before sampling: q = (0.5, 0.3, 0.2) at T = 0.5 is (0.25, 0.09, 0.04) / 0.38
    teacher = torch.full((1, 4000, 7), -30.0)
    teacher[0, :, BLANK], teacher[0, :, 4], teacher[0, :, 5] = math.log(0.5), math.log(0.3), math.log(0.2)
    sample = _soft_sample(teacher, [4])
    sample["target"] = torch.full((4000, 1), 4)
    for temperature, tokens in ((1.0, 0.5), (0.5, 0.13 / 0.38)):
        crit = _criterion(soft_ctc_weight=1.0, soft_ctc_target="sampled", soft_temperature=temperature).train()
        _, _, log = crit(FixedModel(torch.zeros(1, 4000, 7)), sample)
        assert abs(log["pl_sampled_tokens"] / 4000 - tokens) < 0.03, (temperature, log["pl_sampled_tokens"])
    with pytest.raises(ValueError, match="soft_ctc_target must be greedy or sampled"):
        _criterion(soft_ctc_target="beam")
    with pytest.raises(ValueError, match="needs criterion.soft_ctc_weight > 0"):
        _criterion(soft_ctc_target="sampled")
    hard_task = SimpleNamespace(target_dictionary=_dictionary(), blank_symbol="<s>",
                                cfg=SimpleNamespace(pseudo_labels="hard"))
    with pytest.raises(ValueError, match="set task.pseudo_labels=soft"):
        PlCtcCriterion(PlCtcConfig(soft_ctc_weight=1.0, soft_ctc_target="sampled"), hard_task)


def test_soft_labels_misaligned_with_audio_are_refused():
    sample = _soft_sample(torch.randn(3, 1, 7), [4])
    sample["pl_frames"] = torch.tensor([2])
    with pytest.raises(RuntimeError, match="misaligned"):
        _criterion()(FixedModel(torch.randn(3, 1, 7)), sample)
    with pytest.raises(ValueError, match="soft_ctc_weight"):
        _criterion(soft_ctc_weight=2.0)


# ------------------------------------------------------------------ distributed


def _gather_worker(rank, world, port, results):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    from sslasr_plugin.parallel import rank_and_world
    from sslasr_plugin.tasks.slimipl import SlimIplTask

    cache = PseudoLabelCache(size=3, replace_prob=0.5, seed=7)
    trained_on = []
    for step in range(12):
        slot, relabel = cache.plan()
        fresh = None
        if relabel:  # each rank labels its own batch; every rank stores every rank's part
            fresh = SlimIplTask._gather({"ids": torch.tensor([100 * rank + step]), "rank": rank})
        if not cache.full:
            cache.put(slot, fresh)
            entry = fresh
        else:
            entry = cache[slot]
            if fresh is not None:
                cache.put(slot, fresh)
        trained_on.append(int(entry[rank]["ids"]))
    results[rank] = (rank_and_world(), [[int(p["ids"]) for p in e] for e in cache.entries], trained_on)
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_cache_is_identical_on_every_rank_and_each_rank_trains_on_its_part():
    world, results = 2, mp.Manager().dict()
    mp.spawn(_gather_worker, args=(world, free_port(), results), nprocs=world)
    (r0, entries0, trained0), (r1, entries1, trained1) = results[0], results[1]
    assert (r0, r1) == ((0, 2), (1, 2))
    assert entries0 == entries1 and len(entries0) == 3
    assert all(e[1] == e[0] + 100 for e in entries0)  # rank 1's part was labeled at the same step
    assert [t + 100 for t in trained0] == trained1


# ------------------------------------------------------------------ dynamic dropout


def test_dynamic_dropout_lowers_every_dropout_of_the_model(monkeypatch):
    """At the start of pseudo-labeling every dropout -- modules and the float ``dropout`` that
    fairseq's TransformerEncoder applies itself after its positional convolution -- and the
    layerdrop go from 0.5 to 0.1: the attributes, and the share of elements each dropout call
    zeroes in a training-mode forward pass."""
    from fairseq.modules import FairseqDropout

    from sslasr_plugin.models.wav2vec2 import SslAsrWav2Vec2Config, SslAsrWav2Vec2Model
    from sslasr_plugin.tasks.slimipl import SlimIplTask

    cfg = SslAsrWav2Vec2Config(
        frontend="fbank", conv_feature_layers="[(32, 3, 2)]", encoder_layers=2, encoder_embed_dim=32,
        encoder_ffn_embed_dim=64, encoder_attention_heads=2, conv_pos=8, conv_pos_groups=4, layer_norm_first=True,
        final_dim=16, dropout=0.5, attention_dropout=0.5, activation_dropout=0.5, dropout_input=0.5, dropout_features=0.5,
        encoder_layerdrop=0.5,
    )
    model = SslAsrWav2Vec2Model(cfg).train()
    calls = []  # (p, share of nonzero inputs zeroed) of every dropout call
    dropout = torch.nn.functional.dropout

    def recording(x, p=0.5, training=True, inplace=False):
        out = dropout(x, p, training, inplace)
        if training and x.numel() >= 2000:
            calls.append((p, float(((out == 0) & (x != 0)).sum() / (x != 0).sum())))
        return out

    monkeypatch.setattr(torch.nn.functional, "dropout", recording)

    def forward():
        calls.clear()
        torch.manual_seed(0)
        # fairseq's encoder draws its layerdrop from numpy's generator: with it unseeded, a
        # forward pass could drop a different number of layers each time (and so of calls).
        np.random.seed(0)
        model.extract_features(torch.randn(4, 16000), None)
        return list(calls)

    def attributes():
        modules = [m.p for m in model.modules() if isinstance(m, (torch.nn.Dropout, FairseqDropout))]
        return set(modules), model.encoder.dropout, model.encoder.layerdrop

    assert attributes() == ({0.5}, 0.5, 0.5)
    before = forward()
    assert len(before) >= 3 and all(p == 0.5 and abs(rate - 0.5) < 0.05 for p, rate in before), before
    task = SimpleNamespace(_dropout_lowered=False, cfg=SimpleNamespace(pl_dropout=0.1, pl_layerdrop=0.1))
    SlimIplTask._lower_dropout(task, model)
    assert attributes() == ({0.1}, 0.1, 0.1)
    after = forward()
    assert len(after) >= len(before) and all(p == 0.1 and abs(rate - 0.1) < 0.03 for p, rate in after), after
