"""sslasr_data.validate: every data problem named with its file, line and fix."""
import pytest

from sslasr_data.validate import DataError, check_frame_labels, validate_split


def _dictionary(corpus):
    from fairseq.data import Dictionary

    return Dictionary.load(str(corpus / "dict.ltr.txt"))


def _edit_line(path, lineno, text):
    lines = path.read_text().splitlines()
    lines[lineno - 1] = text
    path.write_text("\n".join(lines) + "\n")


def test_clean_corpus_passes(tiny_corpus):
    assert validate_split(str(tiny_corpus), "valid", "ltr", _dictionary(tiny_corpus)) == 8


def test_label_line_count_mismatch(corpus_copy):
    ltr = corpus_copy / "valid.ltr"
    ltr.write_text("\n".join(ltr.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(DataError, match=r"valid.ltr has 7 lines but valid.tsv lists 8 files"):
        validate_split(str(corpus_copy), "valid", "ltr")


def test_symbol_missing_from_dictionary(corpus_copy):
    _edit_line(corpus_copy / "valid.ltr", 3, "C A F \u00c9 |")
    with pytest.raises(DataError, match="valid.ltr: 1 line.*line 3: \u00c9.*dict"):
        validate_split(str(corpus_copy), "valid", "ltr", _dictionary(corpus_copy))


def test_empty_transcript(corpus_copy):
    _edit_line(corpus_copy / "valid.ltr", 2, "")
    with pytest.raises(DataError, match="valid.ltr line 2: empty transcript"):
        validate_split(str(corpus_copy), "valid", "ltr")


def test_missing_audio_and_malformed_rows(corpus_copy):
    rel = (corpus_copy / "valid.tsv").read_text().splitlines()[4].split("\t")[0]
    (corpus_copy / rel).unlink()
    with pytest.raises(DataError, match=f"valid.tsv: 1 audio file.*line 5: .*{rel}"):
        validate_split(str(corpus_copy), "valid", None)
    _edit_line(corpus_copy / "valid.tsv", 5, f"{rel} 1234")
    with pytest.raises(DataError, match="valid.tsv line 5: expected"):
        validate_split(str(corpus_copy), "valid", None)


def _row(corpus, lineno):
    rel, samples = (corpus / "valid.tsv").read_text().splitlines()[lineno - 1].split("\t")
    return corpus / rel, int(samples)


def test_unreadable_audio_is_named_with_its_line(corpus_copy):
    path, _ = _row(corpus_copy, 4)
    path.write_bytes(b"RIFF\x00\x00not really a wave file")
    with pytest.raises(DataError, match=f"valid.tsv line 4: {path} is not readable audio"):
        validate_split(str(corpus_copy), "valid", None)


def test_wrong_sample_rate_says_how_to_resample(corpus_copy):
    import numpy as np
    import soundfile

    path, samples = _row(corpus_copy, 3)
    soundfile.write(path, np.zeros(samples, dtype=np.float32), 8000)
    with pytest.raises(DataError, match=r"valid.tsv line 3: .* is 8000 Hz but the task reads 16000 Hz; resample"):
        validate_split(str(corpus_copy), "valid", None)


def test_stale_manifest_count(corpus_copy):
    path, samples = _row(corpus_copy, 2)
    _edit_line(corpus_copy / "valid.tsv", 2, f"{path.relative_to(corpus_copy)}\t{samples + 160}")
    with pytest.raises(DataError, match=f"valid.tsv line 2: .* has {samples} samples but the manifest says "
                                        f"{samples + 160}: the file was truncated or changed, or the manifest is stale"):
        validate_split(str(corpus_copy), "valid", None)


def test_check_frame_labels_names_line_and_rate(tmp_path):
    tsv, labels = tmp_path / "train.tsv", tmp_path / "train.km"
    rows = [(2, "a.wav", 16000), (3, "b.wav", 32000)]
    labels.write_text("1 " * 98 + "\n" + "2 " * 199 + "\n")
    check_frame_labels(str(tsv), str(labels), rows, 100, 16000)  # 98 ~ 100, 199 ~ 200
    with pytest.raises(DataError) as err:  # the same labels read at 50 Hz
        check_frame_labels(str(tsv), str(labels), rows, 50, 16000)
    msg = str(err.value)
    assert "train.km line 1" in msg and "98 labels" in msg and "98.0 labels/s" in msg and "task.label_rate=50" in msg
    labels.write_text("1 " * 98 + "\n" + "2 " * 190 + "\n")
    with pytest.raises(DataError, match="line 2: 190 labels for b.wav"):
        check_frame_labels(str(tsv), str(labels), rows, 100, 16000)
