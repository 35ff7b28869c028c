"""CSL's frame teacher through the real command lines on the tiny corpus: CTC alignment and
unit tying (data_prep.align), frame cross-entropy training (examples/csl/teacher.yaml),
labelling with the teacher (data_prep.pseudo_labels), re-alignment, and a CSL run on its labels."""
import json
import re
import shutil
import sys

import numpy as np
import pytest

from tests.helpers import hydra_train, run_cli

pytestmark = pytest.mark.slow
CLASSES, MIN_FRAMES = 40, 10


def _align(data, out, *extra, check=True):
    return run_cli([sys.executable, "-m", "data_prep.align", "--data", data, "--splits", "labeled", "valid",
                    "--out", out, "--no-progress", *extra], check=check)


def _encoder_frames(samples):
    """Frames of the scratch_fbank encoder: 25 ms/10 ms log-mel, then a 3-tap stride-2 conv."""
    return ((samples - 400) // 160 + 1 - 3) // 2 + 1


@pytest.fixture(scope="module")
def units(ctc_checkpoint, tiny_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("units") / "units"
    _align(tiny_corpus, out, "--ctc", ctc_checkpoint, "--classes", CLASSES, "--min-frames", MIN_FRAMES)
    return out


@pytest.fixture(scope="module")
def teacher(units, ctc_checkpoint, tiny_corpus, tmp_path_factory):
    save = tmp_path_factory.mktemp("teacher")
    hydra_train("examples/csl", "teacher", tiny_corpus, save, f"task.label_dir={units}",
                f"model.init_encoder={ctc_checkpoint}")
    return save / "checkpoint_last.pt"


def _check_alignment(units, corpus, split):
    """Every frame in one segment, segments in the transcript's order, one class per frame."""
    rows = (corpus / f"{split}.tsv").read_text().splitlines()[1:]
    transcripts = (corpus / f"{split}.ltr").read_text().splitlines()
    alis = (units / f"{split}.ali").read_text().splitlines()
    labels = (units / f"{split}.unit").read_text().splitlines()
    classes = {line.split()[0] for line in (units / "dict.unit.txt").read_text().splitlines()}
    assert len(alis) == len(labels) == len(rows)
    for row, transcript, ali, lab in zip(rows, transcripts, alis, labels):
        frames, body = ali.split("\t")
        tokens = [item.rsplit(":", 1)[0] for item in body.split()]
        starts = [int(item.rsplit(":", 1)[1]) for item in body.split()]
        assert int(frames) == _encoder_frames(int(row.split("\t")[1])) == len(lab.split())
        assert starts[0] == 0 and all(a < b for a, b in zip(starts, starts[1:])) and starts[-1] < int(frames)
        inner = tokens[1:] if tokens[0] == "|" and transcript.split()[0] != "|" else tokens
        inner = inner[:-1] if len(inner) > len(transcript.split()) else inner
        assert inner == transcript.split()  # the transcript, plus at most a leading and a trailing silence
        assert set(lab.split()) <= classes
        # one class per segment, from the segment's own letter's tree (a letter without a tree of
        # its own, too rare in `labeled`, takes another's)
        ends = starts[1:] + [int(frames)]
        trees = {c.rsplit("_", 1)[0] for c in classes}
        for tok, a, b in zip(tokens, starts, ends):
            segment = set(lab.split()[a:b])
            assert len(segment) == 1 and (segment.pop().rsplit("_", 1)[0] == tok or tok not in trees)


def test_alignment_covers_every_frame_and_classes_keep_min_frames(units, tiny_corpus):
    for split in ("labeled", "valid"):
        _check_alignment(units, tiny_corpus, split)
    meta = json.loads((units / "units.json").read_text())
    assert meta["label_rate"] == 50 and meta["fit_split"] == "labeled"
    assert len(meta["frames_per_class"]) == meta["classes"] <= CLASSES
    assert min(meta["frames_per_class"].values()) >= MIN_FRAMES
    assert sum(meta["frames_per_class"].values()) == sum(
        len(line.split()) for line in (units / "labeled.unit").read_text().splitlines())


def test_alignment_resumes_and_tying_is_deterministic(units, ctc_checkpoint, tiny_corpus, tmp_path):
    out = tmp_path / "again"
    out.mkdir()
    shutil.copy(units / "labeled.ali", out)  # a finished split is kept
    full = (units / "valid.ali").read_text().splitlines()
    (out / "valid.ali.partial").write_text("\n".join(full[:3]) + "\n" + full[3][:7])  # interrupted, torn row
    _align(tiny_corpus, out, "--ctc", ctc_checkpoint, "--classes", CLASSES, "--min-frames", MIN_FRAMES)
    for name in ("valid.ali", "labeled.unit", "valid.unit", "dict.unit.txt", "units.json"):
        assert (out / name).read_text() == (units / name).read_text(), name
    proc = _align(tiny_corpus, out, "--ctc", ctc_checkpoint, check=False)
    assert proc.returncode == 2 and "exists; pass --overwrite" in proc.stderr
    proc = _align(tiny_corpus, tmp_path / "few", "--ctc", ctc_checkpoint, "--classes", 2, check=False)
    assert proc.returncode == 2 and "ask for at least" in proc.stderr


def test_teacher_labels_unlabeled_audio_and_csl_trains_on_them(teacher, units, tiny_corpus, tmp_path):
    pl = tmp_path / "pl"
    proc = run_cli([sys.executable, "-m", "data_prep.pseudo_labels", "--teacher", teacher, "--data", tiny_corpus,
                    "--splits", "unlabeled", "valid", "--out", pl, "--no-progress", "--posteriors"])
    # a frame teacher's labels are also scored reading a letter per run of one letter
    assert re.search(r"unlabeled: pseudo-label WER [\d.]+, CER [\d.]+ against unlabeled.ltr \(a letter per run of one "
                     r"class\); WER [\d.]+, CER [\d.]+ read a letter per run of one letter", proc.stdout)
    runs = json.loads((pl / "plab.json").read_text())["oracle_error_rates"]["valid"]["letter_runs"]
    assert 0 <= runs["cer"] and runs["utterances"] == 8
    classes = [line.split()[0] for line in (pl / "dict.plab.txt").read_text().splitlines()]
    assert classes == [line.split()[0] for line in (units / "dict.unit.txt").read_text().splitlines()]
    assert json.loads((pl / "plab.json").read_text())["rule"].startswith("frame teacher")
    rows = (tiny_corpus / "unlabeled.tsv").read_text().splitlines()[1:]
    labels = [line.split() for line in (pl / "unlabeled.plab").read_text().splitlines()]
    assert [len(lab) for lab in labels] == [_encoder_frames(int(row.split("\t")[1])) for row in rows]
    post = np.fromfile(pl / "unlabeled.plab.post", dtype=np.float16).reshape(-1, len(classes)).astype(np.float32)
    assert post.shape[0] == sum(len(lab) for lab in labels)
    assert np.allclose(post.sum(1), 1, atol=0.02)
    # the label of a frame is its most probable class (float16 ties aside)
    best = post[np.arange(len(post)), [classes.index(c) for lab in labels for c in lab]]
    assert np.all(best >= post.max(1) - 1e-3)

    # resumable with posteriors: an interrupted valid split (2 rows and a torn posterior tail)
    again = tmp_path / "again"
    again.mkdir()
    for ext in ("", ".conf", ".ltr"):
        lines = (pl / f"valid.plab{ext}").read_text().splitlines()
        (again / f"valid.plab{ext}.partial").write_text("\n".join(lines[:2]) + "\n")
    frames = sum(len(line.split()) for line in (pl / "valid.plab").read_text().splitlines()[:2])
    (again / "valid.plab.post.partial").write_bytes((pl / "valid.plab.post").read_bytes()[:frames * len(classes) * 2 + 5])
    run_cli([sys.executable, "-m", "data_prep.pseudo_labels", "--teacher", teacher, "--data", tiny_corpus,
             "--splits", "valid", "--out", again, "--no-progress", "--posteriors"])
    assert (again / "valid.plab").read_text() == (pl / "valid.plab").read_text()
    assert (again / "valid.plab.post").read_bytes() == (pl / "valid.plab.post").read_bytes()
    # labels made without --posteriors cannot be resumed with them (their frames would get zeros)
    (again / "valid.plab.post").unlink()
    for ext in ("", ".conf", ".ltr"):
        (again / f"valid.plab{ext}").rename(again / f"valid.plab{ext}.partial")
    (again / "valid.plab.post.partial").unlink(missing_ok=True)
    refused = run_cli([sys.executable, "-m", "data_prep.pseudo_labels", "--teacher", teacher, "--data", tiny_corpus,
                       "--splits", "valid", "--out", again, "--no-progress", "--posteriors"], check=False)
    assert refused.returncode != 0 and "ran without --posteriors" in refused.stderr and "--overwrite" in refused.stderr

    proc = hydra_train("examples/csl", "csl", tiny_corpus, tmp_path / "csl", f"task.label_dir={pl}")
    log = proc.stdout + proc.stderr
    assert "retrieval_acc" in log and re.search(r"label-aware batching, epoch 1: \d+ batches", log)


def test_teacher_realigns_the_labeled_data(teacher, units, tiny_corpus, tmp_path):
    out = tmp_path / "realigned"
    _align(tiny_corpus, out, "--realign-with", teacher, "--units", units)
    for split in ("labeled", "valid"):
        _check_alignment(out, tiny_corpus, split)
        old = [line.split("\t")[1].split() for line in (units / f"{split}.ali").read_text().splitlines()]
        new = [line.split("\t")[1].split() for line in (out / f"{split}.ali").read_text().splitlines()]
        assert [[t.rsplit(":", 1)[0] for t in row] for row in new] == [[t.rsplit(":", 1)[0] for t in row] for row in old]
    assert json.loads((out / "units.json").read_text())["units"] == json.loads((units / "units.json").read_text())["units"]
    assert (out / "dict.unit.txt").read_text().split()[::2] == (units / "dict.unit.txt").read_text().split()[::2]


def test_ctc_aligns_other_splits_into_earlier_classes(units, ctc_checkpoint, tiny_corpus, tmp_path):
    """--ctc with --units: other data labelled in classes fitted before, none fitted again (the
    low-resource benchmark's frame-label ceiling: unlabeled audio's true transcripts in stage 9's classes)."""
    out = tmp_path / "unlabeled_units"
    run_cli([sys.executable, "-m", "data_prep.align", "--data", tiny_corpus, "--splits", "unlabeled", "valid",
             "--out", out, "--no-progress", "--ctc", ctc_checkpoint, "--units", units])
    for split in ("unlabeled", "valid"):
        _check_alignment(out, tiny_corpus, split)
    meta, earlier = (json.loads((d / "units.json").read_text()) for d in (out, units))
    assert meta["units"] == earlier["units"] and meta["fit_split"] == "labeled" and meta["counted_split"] == "unlabeled"
    assert meta["classes_from"] == str(units.resolve())
    assert (out / "dict.unit.txt").read_text().split()[::2] == (units / "dict.unit.txt").read_text().split()[::2]
    # the same aligner and classes label valid as the fitting run did; the fitted split is not aligned
    assert (out / "valid.unit").read_text() == (units / "valid.unit").read_text()
    assert not (out / "labeled.ali").exists()
    assert sum(meta["frames_per_class"].values()) == sum(
        len(line.split()) for line in (out / "unlabeled.unit").read_text().splitlines())
    proc = run_cli([sys.executable, "-m", "data_prep.align", "--data", tiny_corpus, "--splits", "valid", "--out",
                    tmp_path / "none", "--no-progress", "--ctc", ctc_checkpoint, "--units", tmp_path], check=False)
    assert proc.returncode == 2 and "--units must be an output directory of data_prep.align" in proc.stderr
