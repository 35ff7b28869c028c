"""data_prep.pseudo_labels reads manifests with the checked reader: a bad row is named, with its line."""
import pytest

from data_prep.pseudo_labels import pseudo_label_split
from sslasr_data.validate import DataError


def test_malformed_manifest_row_is_named(tmp_path):
    (tmp_path / "unlabeled.tsv").write_text(f"{tmp_path}\na.wav\t16000\nb.wav 16000\n")
    with pytest.raises(DataError, match=r"unlabeled.tsv line 3: expected '<relative path><TAB><number of samples>'"):
        pseudo_label_split(None, None, str(tmp_path), "unlabeled", str(tmp_path / "out"), progress=False)
