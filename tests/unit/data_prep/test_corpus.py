import json

import pytest
import soundfile as sf

from data_prep.corpus import (
    EVAL_SPLITS, OOD_VOICES, PRESETS, SUBSETS, TRAIN_VOICES, CorpusError, build_corpus, load_sentences, plan_corpus,
)
from data_prep.text import letters


def _read_lines(path):
    return path.read_text().splitlines()


def test_splits_line_up(tiny_corpus):
    for split in PRESETS["tiny"]:
        tsv = _read_lines(tiny_corpus / f"{split}.tsv")
        wrd = _read_lines(tiny_corpus / f"{split}.wrd")
        ltr = _read_lines(tiny_corpus / f"{split}.ltr")
        assert tsv[0] == str(tiny_corpus)
        assert len(tsv) - 1 == len(wrd) == len(ltr) == PRESETS["tiny"][split]
        assert ltr == [letters(w) for w in wrd]


def test_audio_matches_manifest(tiny_corpus):
    for split in PRESETS["tiny"]:
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
    voices = {split: {u["voice"] for u in plan if u["split"] == split} for split in PRESETS["tiny"]}
    assert voices["test_ood"] | voices["unlabeled_ood"] <= set(OOD_VOICES)
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


def test_no_preset_trains_on_any_presets_eval_sentences():
    sentences = load_sentences()
    plans = {name: plan_corpus(sentences, sizes, seed=1) for name, sizes in PRESETS.items()}
    eval_texts = {u.text for plan in plans.values() for u in plan if u.split in EVAL_SPLITS}
    for name, plan in plans.items():
        train = [u for u in plan if u.split not in EVAL_SPLITS]
        assert not {u.text for u in train} & eval_texts, name
        assert [u.split for u in plan if u.split in EVAL_SPLITS] == [
            s for s in EVAL_SPLITS if s in PRESETS[name] for _ in range(PRESETS[name][s])]
    # Every preset's eval splits are prefixes of the same fixed pool, whatever the seed.
    for split in EVAL_SPLITS:
        demo = [u.text for u in plans["demo"] if u.split == split]
        lowres = [u.text for u in plan_corpus(sentences, PRESETS["lowres"], seed=7) if u.split == split]
        assert lowres[:len(demo)] == demo


def test_unlabeled_audio_re_speaks_training_sentences_in_another_voice_only_when_they_run_out():
    sentences = [f"sentence number {i} of a made up corpus" for i in range(2450)]
    plan = plan_corpus(sentences, {"labeled": 20, "unlabeled": 60, "valid": 5, "test": 5, "test_ood": 5}, seed=3)
    labeled = [u.text for u in plan if u.split == "labeled"]
    unlabeled = [u for u in plan if u.split == "unlabeled"]
    assert len(set(labeled)) == 20
    # The 30 sentences left fresh, then 30 re-spoken from the start of the training pool.
    assert len({u.text for u in unlabeled}) == 50 and sum(u.text in labeled for u in unlabeled) == 20
    speakers = {}
    for u in [u for u in plan if u.split not in EVAL_SPLITS]:
        assert u.speaker not in speakers.get(u.text, set())
        speakers.setdefault(u.text, set()).add(u.speaker)
    with pytest.raises(CorpusError, match="need .* sentences"):
        plan_corpus(sentences, {"labeled": 51, "unlabeled": 1, "valid": 5, "test": 5, "test_ood": 5}, seed=3)


def test_nested_subsets_are_prefixes_of_their_parent(tiny_corpus):
    for name, (parent, count) in SUBSETS["tiny"].items():
        for ext in ("tsv", "ltr", "wrd"):
            sub, full = _read_lines(tiny_corpus / f"{name}.{ext}"), _read_lines(tiny_corpus / f"{parent}.{ext}")
            header = 1 if ext == "tsv" else 0
            assert sub == full[:count + header]


def test_dictionary_order_does_not_depend_on_the_text(tmp_path):
    from data_prep.corpus import write_dictionary

    write_dictionary(tmp_path / "a.txt", ["AAA ZZZ"])
    write_dictionary(tmp_path / "b.txt", ["QUIET"])
    order = [[line.split()[0] for line in (tmp_path / f"{n}.txt").read_text().splitlines()] for n in "ab"]
    assert order[0] == order[1] == sorted(order[0])
    assert (tmp_path / "a.txt").read_text().splitlines()[1] == "A 3"
