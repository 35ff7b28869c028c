"""decoding.ctc.best_paths: the one best-path function behind greedy decoding and frame pseudo-labels."""
import math

import torch

from sslasr_plugin.decoding.ctc import best_paths, greedy_decode


def test_best_path_keeps_blanks_and_repeats_within_each_length():
    probs = torch.tensor([[[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.5, 0.1, 0.4]],
                          [[0.1, 0.1, 0.8], [0.9, 0.05, 0.05], [0.3, 0.3, 0.4], [0.3, 0.3, 0.4]]])
    (path0, lp0), (path1, lp1) = best_paths(probs.log(), torch.tensor([4, 2]))
    assert path0.tolist() == [0, 1, 1, 0] and path1.tolist() == [2, 0]
    assert torch.allclose(lp0.exp(), torch.tensor([0.6, 0.7, 0.8, 0.5]))
    assert torch.allclose(lp1.exp(), torch.tensor([0.8, 0.9]))
    hyp = greedy_decode(probs.log(), torch.tensor([4, 2]), blank=0)
    assert hyp[0]["tokens"].tolist() == [1] and math.isclose(hyp[0]["score"].exp().item(), 0.6 * 0.7 * 0.8 * 0.5,
                                                             rel_tol=1e-5)
