"""data_prep.pseudo_labels: frame labels from a CTC best path."""
import numpy as np

from data_prep.pseudo_labels import frame_labels_from_path


def test_frame_labels_fill_blanks_with_previous_token():
    blank, silence = 0, 5
    assert frame_labels_from_path(np.array([0, 0, 3, 0, 0, 4, 4, 0]), blank, silence).tolist() == [3, 3, 3, 3, 3, 4, 4, 4]
    assert frame_labels_from_path(np.array([0, 0, 0]), blank, silence).tolist() == [5, 5, 5]
