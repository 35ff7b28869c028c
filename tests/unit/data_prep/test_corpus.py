import json

import pytest
import soundfile as sf

from data_prep.corpus import (
    OOD_VOICES, PRESETS, SPLITS, TRAIN_VOICES, CorpusError, build_corpus, load_sentences, plan_corpus,
)
from data_prep.text import letters


def _read_lines(path):
    return path.read_text().splitlines()


def test_splits_line_up(tiny_corpus):
    for split in SPLITS:
        tsv = _read_lines(tiny_corpus / f"{split}.tsv")
        wrd = _read_lines(tiny_corpus / f"{split}.wrd")
        ltr = _read_lines(tiny_corpus / f"{split}.ltr")
        assert tsv[0] == str(tiny_corpus)
        assert len(tsv) - 1 == len(wrd) == len(ltr) == PRESETS["tiny"][split]
        assert ltr == [letters(w) for w in wrd]


def test_audio_matches_manifest(tiny_corpus):
    for split in SPLITS:
        for row in _read_lines(tiny_corpus / f"{split}.tsv")[1:]:
            rel, frames = row.split("\t")
            info = sf.info(str(tiny_corpus / rel))
            assert (info.samplerate, info.channels, info.frames) == (16000, 1, int(frames))
            assert 0.5 < info.duration < 12.0
            audio, _ = sf.read(str(tiny_corpus / rel))
            assert abs(audio).max() < 0.999  # no clipping
            assert abs(audio).max() > 0.05  # not silent


def test_dictionary_covers_every_letter(tiny_corpus):
    symbols = [line.split()[0] for line in _read_lines(tiny_corpus / "dict.ltr.txt")]
    assert set("ABCDEFGHIJKLMNOPQRSTUVWXYZ'|") == set(symbols)
    assert len(symbols) == len(set(symbols))


def test_ood_speakers_never_train_and_sentences_disjoint(tiny_corpus):
    plan = json.loads((tiny_corpus / "corpus.json").read_text())["utterances"]
    voices = {split: {u["voice"] for u in plan if u["split"] == split} for split in SPLITS}
    assert voices["test_ood"] <= set(OOD_VOICES)
    for split in ("labeled", "unlabeled", "valid", "test"):
        assert voices[split] <= set(TRAIN_VOICES)
    texts = [u["text"] for u in plan]
    assert len(texts) == len(set(texts))


def test_plan_is_deterministic_per_seed():
    sentences = load_sentences()
    assert len(sentences) > 9000
    a = plan_corpus(sentences, PRESETS["tiny"], seed=1)
    assert a == plan_corpus(sentences, PRESETS["tiny"], seed=1)
    assert a != plan_corpus(sentences, PRESETS["tiny"], seed=2)
    with pytest.raises(CorpusError, match="need .* sentences"):
        plan_corpus(sentences[:10], PRESETS["tiny"], seed=1)


def test_resume_restores_missing_audio_and_refuses_other_corpus(tmp_path):
    sizes = {"labeled": 3, "unlabeled": 2, "valid": 1, "test": 1, "test_ood": 1}
    out = build_corpus(str(tmp_path / "c"), preset="custom", sizes=sizes, progress=False)
    wav = out / "wav" / "labeled" / "labeled-000001.wav"
    original = wav.read_bytes()
    wav.unlink()
    (out / "wav" / "test" / "test-000000.wav").write_bytes(b"truncated")
    build_corpus(str(out), preset="custom", sizes=sizes, progress=False)
    assert wav.read_bytes() == original
    assert sf.info(str(out / "wav" / "test" / "test-000000.wav")).frames > 0
    with pytest.raises(CorpusError, match="different corpus"):
        build_corpus(str(out), preset="custom", sizes=dict(sizes, labeled=4), progress=False)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(CorpusError, match="not empty"):
        build_corpus(str(tmp_path / "mine"), preset="custom", sizes=sizes, progress=False)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
