import math

import pytest
import torch

from sslasr_plugin.decoding.ctc import CtcGenerator, greedy_decode
from sslasr_plugin.decoding.report import error_rates, read_generate_output

BLANK = 0


def one_hot_lprobs(frames, vocab=5, p=0.7):
    """Log-probs whose argmax follows ``frames``; the best symbol has probability p."""
    rest = (1 - p) / (vocab - 1)
    probs = torch.full((len(frames), vocab), rest)
    probs[torch.arange(len(frames)), torch.tensor(frames)] = p
    return probs.log()


def test_greedy_collapses_repeats_and_removes_blanks():
    frames = [0, 3, 3, 0, 3, 4, 4, 0, 0, 2]
    (hypo,) = greedy_decode(one_hot_lprobs(frames)[None], torch.tensor([len(frames)]), BLANK)
    assert hypo["tokens"].tolist() == [3, 3, 4, 2]  # the blank between the two 3s keeps both
    assert hypo["score"].item() == pytest.approx(len(frames) * math.log(0.7), rel=1e-5)
    assert hypo["positional_scores"].tolist() == pytest.approx([math.log(0.7)] * 4, rel=1e-5)


def test_greedy_ignores_frames_past_length():
    a = one_hot_lprobs([1, 1, 2, 0, 0, 0])
    b = one_hot_lprobs([3, 0, 3, 4, 4, 4])
    hypos = greedy_decode(torch.stack([a, b]), torch.tensor([3, 4]), BLANK)
    assert [h["tokens"].tolist() for h in hypos] == [[1, 2], [3, 3, 4]]


def test_all_blank_gives_empty_hypothesis():
    (hypo,) = greedy_decode(one_hot_lprobs([0, 0, 0])[None], torch.tensor([3]), BLANK)
    assert hypo["tokens"].numel() == 0


class _FixedModel(torch.nn.Module):
    """Emits given log-probs (T, B, V) with a padding mask, like Wav2VecCtc."""

    def __init__(self, lprobs, padding_mask):
        super().__init__()
        self.lprobs, self.padding_mask = lprobs, padding_mask

    def forward(self, **unused):
        return {"encoder_out": self.lprobs, "padding_mask": self.padding_mask}

    def get_normalized_probs(self, net_output, log_probs):
        return net_output["encoder_out"]


def test_generator_returns_fairseq_generate_hypothesis_dicts():
    from fairseq.data import Dictionary

    d = Dictionary()
    a = d.add_symbol("A")
    lprobs = torch.stack([one_hot_lprobs([a, a, 0, a], vocab=len(d)), one_hot_lprobs([0, a, 0, 0], vocab=len(d))], 1)
    pad = torch.tensor([[False, False, False, False], [False, False, True, True]])
    gen = CtcGenerator([_FixedModel(lprobs, pad)], d, blank=0)
    out = gen.generate(gen.models, {"net_input": {}})
    assert [h[0]["tokens"].tolist() for h in out] == [[a, a], [a]]
    for (h,) in out:
        assert set(h) >= {"tokens", "score", "positional_scores", "alignment"}
        assert h["positional_scores"].dtype == torch.float32
    assert d.eos() in gen.symbols_to_strip_from_output


def test_report_reads_generate_output(tmp_path):
    log = tmp_path / "generate-test.txt"
    log.write_text(
        "T-1\tTHE CAT SAT\nH-1\t-1.0\tTHE CAT SAT\nD-1\t-1.0\tTHE CAT SAT\n"
        "T-0\tA DOG\nH-0\t-2.0\tA DOG RAN\nD-0\t-2.0\tA DOG RAN\n"
        "Generate test with beam=5: WER: 20.00\n"
    )
    pairs = read_generate_output(str(log))
    assert pairs == [("A DOG", "A DOG RAN"), ("THE CAT SAT", "THE CAT SAT")]
    rates = error_rates(pairs)
    assert rates["wer"] == pytest.approx(100 * 1 / 5)
    assert rates["cer"] == pytest.approx(100 * 4 / 16)
