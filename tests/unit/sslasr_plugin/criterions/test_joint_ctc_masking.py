"""sslasr_joint_cpc_ctc: CTC updates mask time steps only after ctc_mask_after_updates (the
authors' saug_warmup); outside training the model's own rule applies (fairseq masks in training only)."""
from types import SimpleNamespace

import pytest
import torch
from fairseq.data import Dictionary

from sslasr_plugin.criterions.joint_cpc_ctc import JointCpcCtcConfig, JointCpcCtcCriterion


class _Model(torch.nn.Module):
    """What the criterion reads of a sslasr_ctc model: the encoder's update count and mask_prob."""

    def __init__(self, num_updates):
        super().__init__()
        self.w2v_encoder = SimpleNamespace(num_updates=num_updates, w2v_model=SimpleNamespace(mask_prob=0.25))


@pytest.fixture
def criterion(monkeypatch):
    task = SimpleNamespace(target_dictionary=Dictionary())
    crit = JointCpcCtcCriterion(JointCpcCtcConfig(ctc_mask_after_updates=20), task)
    seen = []
    # the CTC loss records the mask_prob the model would mask with
    monkeypatch.setattr(crit.ctc, "forward",
                        lambda model, sample, reduce: seen.append(model.w2v_encoder.w2v_model.mask_prob))
    crit.seen = seen
    return crit


@pytest.mark.parametrize("num_updates, training, expected", [
    (0, True, 0.0), (19, True, 0.0), (20, True, 0.25), (500, True, 0.25), (500, False, 0.25),
])
def test_ctc_masking_starts_after_the_warmup(criterion, num_updates, training, expected):
    model = _Model(num_updates).train(training)
    criterion(model, {"mode": "sup"})
    assert criterion.seen == [expected]
    assert model.w2v_encoder.w2v_model.mask_prob == 0.25  # restored
