"""The importers of data_prep/importers/ on synthetic trees shaped like each source, built from the
tiny corpus: LibriSpeech, Libri-Light's limited-resource sets, an unlabeled folder with a long file,
a CSV table, lhotse manifests made with lhotse's API; resampling, channels, resume, refusals."""
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data_prep.corpus import write_dictionary
from data_prep.importers import common
from data_prep.importers.common import ImportProblem, normalize_generic
from data_prep.importers.librilight import import_librilight_limited
from data_prep.importers.librispeech import import_librispeech, main as librispeech_main
from data_prep.importers.table import import_table
from data_prep.importers.unlabeled import import_unlabeled
from tests.importer_trees import tiny_utterances, write_librispeech
from sslasr_data.validate import read_manifest


def imported(out: Path, split: str):
    """{file stem: (samples, transcript)} of an imported split, read back through its manifest."""
    root, rows = read_manifest(str(out / f"{split}.tsv"))
    texts = (out / f"{split}.wrd").read_text().splitlines()
    for _, rel, samples in rows:
        assert sf.info(str(Path(root) / rel)).frames == samples
    return {Path(rel).stem: (samples, text) for (_, rel, samples), text in zip(rows, texts)}


def test_librispeech_subsets_to_splits(tiny_corpus, tmp_path):
    ls = tmp_path / "LibriSpeech"
    train = write_librispeech(ls / "train-clean-100", tiny_utterances(tiny_corpus, "labeled")[:6])
    dev = write_librispeech(ls / "dev-clean", tiny_utterances(tiny_corpus, "valid")[:3], speaker0=300)
    out = tmp_path / "data"
    status = librispeech_main(["--root", str(ls), "--out", str(out), "--no-progress",
                               "--splits", "labeled=train-clean-100", "valid=dev-clean"])
    assert status == 0
    assert {k: v[1] for k, v in imported(out, "labeled").items()} == train
    assert {k: v[1] for k, v in imported(out, "valid").items()} == dev
    first = next(iter(train))
    spelled = " ".join(" ".join(word) + " |" for word in train[first].split())
    assert (out / "labeled.ltr").read_text().splitlines()[0] == spelled
    assert not (out / "cache").exists()  # 16 kHz mono flac is referenced where it lies
    fixed = tmp_path / "dict.ltr.txt"
    write_dictionary(fixed, [])
    assert (out / "dict.ltr.txt").read_text() == fixed.read_text()
    record = json.loads((out / "import.json").read_text())
    assert record["splits"]["labeled"]["source"] == "librispeech"
    assert record["splits"]["labeled"]["normalization"] == "librispeech"
    assert record["splits"]["valid"]["rows"] == 3 and record["dictionary"] == "fixed"
    longest = max(n for n, _ in imported(out, "labeled").values())
    assert record["splits"]["labeled"]["longest_seconds"] == longest / 16000


def test_librilight_limited_sets_by_their_definitions(tiny_corpus, tmp_path):
    utterances = iter(tiny_utterances(tiny_corpus, "labeled"))
    root = tmp_path / "librispeech_finetuning"
    parts = [f"1h/{i}" for i in range(6)] + ["9h"]
    ids = {}
    for n, part in enumerate(parts):
        for m, kind in enumerate(("clean", "other")):
            ids[(part, kind)] = set(write_librispeech(root / part / kind, [next(utterances)], speaker0=10 * n + m))
    expected = {
        "10min": ids[("1h/0", "clean")] | ids[("1h/0", "other")],
        "1h": set().union(*(ids[(p, k)] for p in parts[:6] for k in ("clean", "other"))),
        "10h": set().union(*ids.values()),
    }
    for name, utts in expected.items():
        out = tmp_path / f"data_{name}"
        import_librilight_limited(tmp_path, name, out=out, progress=False)  # the folder holding it works too
        assert set(imported(out, "labeled")) == utts, name
    assert [len(v) for v in expected.values()] == [2, 12, 14]
    with pytest.raises(ImportProblem, match="librispeech_finetuning"):
        import_librilight_limited(root / "1h", "1h", out=tmp_path / "bad", progress=False)


def test_unlabeled_folder_segments_long_files(tiny_corpus, tmp_path):
    audio = [a for a, _ in tiny_utterances(tiny_corpus, "unlabeled")[:8]]
    folder = tmp_path / "small" / "1234" / "book"
    folder.mkdir(parents=True)
    long = np.concatenate(audio)
    sf.write(str(folder / "long.flac"), long, 16000)
    sf.write(str(folder / "short.wav"), audio[0][:16000], 16000)
    out = tmp_path / "data"
    result = import_unlabeled(tmp_path / "small", out=out, segment_seconds=2.0, min_segment_seconds=0.5,
                              progress=False)
    root, rows = read_manifest(str(out / "unlabeled.tsv"))
    lengths = {rel: n for _, rel, n in rows}
    chunks = sorted(rel for rel in lengths if "long_" in rel)
    whole, tail = divmod(len(long), 32000)
    assert len(chunks) == whole + (tail >= 8000)
    assert sum(lengths[c] for c in chunks) == len(long)  # no audio lost: a short tail joins the last chunk
    assert all(lengths[c] == 32000 for c in chunks[:-1]) and 8000 <= lengths[chunks[-1]] < 40000
    assert np.allclose(sf.read(str(Path(root) / chunks[1]))[0], long[32000:64000], atol=1 / 32768)
    assert lengths[next(rel for rel in lengths if rel.endswith("short.wav"))] == 16000
    assert not (out / "unlabeled.ltr").exists() and result.rows == len(rows) and result.problems == []


def test_other_rates_resampled_or_refused_with_the_command(tmp_path):
    t = np.arange(22050) / 22050
    folder = tmp_path / "audio"
    folder.mkdir()
    sf.write(str(folder / "a.flac"), 0.5 * np.sin(2 * np.pi * 440 * t), 22050)
    sf.write(str(folder / "b.wav"), 0.5 * np.sin(2 * np.pi * 300 * np.arange(8000) / 8000), 8000)
    out = tmp_path / "data"
    with pytest.raises(ImportProblem, match="22050 Hz.*--resample") as err:
        import_unlabeled(folder, out=out, progress=False)
    assert err.value.flag == "--resample"
    import_unlabeled(folder, out=out, resample=True, progress=False)
    root, rows = read_manifest(str(out / "unlabeled.tsv"))
    assert [(rel, n) for _, rel, n in rows] == [("a.flac", 16000), ("b.flac", 16000)]
    assert Path(root) == out / "cache" / "unlabeled"
    resampled = sf.read(str(Path(root) / rows[0][1]))[0]
    spectrum = np.abs(np.fft.rfft(resampled))
    assert np.argmax(spectrum) == 440  # 1 s at 16 kHz: bin k is k Hz


def test_multichannel_needs_a_choice(tmp_path):
    x = 0.5 * np.sin(np.arange(16000) / 10)
    folder = tmp_path / "audio"
    folder.mkdir()
    sf.write(str(folder / "stereo.wav"), np.stack([x, -0.5 * x], axis=1), 16000)
    with pytest.raises(ImportProblem, match="2 channels.*--channel mix"):
        import_unlabeled(folder, out=tmp_path / "refused", progress=False)
    for channel, expected in (("mix", 0.25 * x), (1, -0.5 * x), (0, x)):
        out = tmp_path / f"ch{channel}"
        import_unlabeled(folder, out=out, channel=channel, progress=False)
        root, rows = read_manifest(str(out / "unlabeled.tsv"))
        assert np.allclose(sf.read(str(Path(root) / rows[0][1]))[0], expected, atol=1 / 16000)


def test_table_with_generic_normalization_reports_unknown_symbols(tiny_corpus, tmp_path):
    utterances = tiny_utterances(tiny_corpus, "labeled")[:3]
    (tmp_path / "clips").mkdir()
    raw = ["Hello, world -- it's 'quoted'!", "Don't stop-me now.", "Room 2 is free"]
    lines = ["file\tsentence"]
    for i, ((audio, _), text) in enumerate(zip(utterances, raw)):
        sf.write(str(tmp_path / "clips" / f"c{i}.ogg"), audio, 16000, format="OGG", subtype="VORBIS")
        lines.append(f"clips/c{i}.ogg\t{text}")
    table = tmp_path / "list.tsv"
    table.write_text("\n".join(lines) + "\n")
    out = tmp_path / "data"
    with pytest.raises(ImportProblem, match="line 1: no column 'path'"):
        import_table(table, "labeled", out=out, progress=False)
    result = import_table(table, "labeled", "file", "sentence", out=out, progress=False)
    assert (out / "labeled.wrd").read_text().splitlines() == ["HELLO WORLD IT'S QUOTED", "DON'T STOP ME NOW",
                                                              "ROOM 2 IS FREE"]
    assert result.problems == [f"{out / 'labeled.ltr'} line 3: symbols missing from dict.ltr.txt: 2; "
                               "add them or normalize the text"]
    other = tmp_path / "built"
    assert import_table(table, "labeled", "file", "sentence", out=other, dictionary="from-text",
                        progress=False).problems == []
    assert "2 1" in (other / "dict.ltr.txt").read_text().splitlines()
    table.write_text(table.read_text() + "clips/missing.ogg\tgone\n")
    with pytest.raises(ImportProblem, match="list.tsv line 5: audio .*missing.ogg' not found"):
        import_table(table, "labeled", "file", "sentence", out=tmp_path / "x", progress=False)


def test_generic_normalization_keeps_what_it_cannot_spell():
    assert normalize_generic("  l'été -- 'twas (Mr. Smith's) 3rd; ") == "L'ÉTÉ TWAS MR SMITH'S 3RD"


def test_lhotse_manifests_made_with_lhotse(tiny_corpus, tmp_path):
    from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet

    from data_prep.importers.lhotse_manifest import import_lhotse

    utterances = tiny_utterances(tiny_corpus, "valid")[:3]
    (tmp_path / "wav").mkdir()
    recordings, supervisions = [], []
    for i, (audio, text) in enumerate(utterances[:2]):
        sf.write(str(tmp_path / "wav" / f"r{i}.flac"), audio, 16000)
        recordings.append(Recording.from_file(tmp_path / "wav" / f"r{i}.flac", recording_id=f"r{i}"))
        supervisions.append(SupervisionSegment(f"s{i}", f"r{i}", 0, recordings[-1].duration, text=text.lower()))
    # One long recording at 8 kHz with two supervised segments: lhotse reads it, we resample.
    a, b = utterances[2][0], utterances[0][0]
    long = np.concatenate([a, b])[::2]
    sf.write(str(tmp_path / "wav" / "long.wav"), long, 8000)
    recordings.append(Recording.from_file(tmp_path / "wav" / "long.wav", recording_id="long"))
    supervisions += [SupervisionSegment("long-a", "long", 0, len(a) / 16000, text=utterances[2][1]),
                     SupervisionSegment("long-b", "long", len(a) / 16000, len(b) / 16000, text=utterances[0][1])]
    RecordingSet.from_recordings(recordings).to_file(tmp_path / "recs.jsonl.gz")
    SupervisionSet.from_segments(supervisions).to_file(tmp_path / "sups.jsonl.gz")

    out = tmp_path / "data"
    manifests = dict(recordings=tmp_path / "recs.jsonl.gz", supervisions=tmp_path / "sups.jsonl.gz")
    with pytest.raises(ImportProblem, match="long-a.* is 8000 Hz.*--resample"):
        import_lhotse("labeled", out=out, progress=False, **manifests)
    result = import_lhotse("labeled", out=out, resample=True, progress=False, **manifests)
    rows = imported(out, "labeled")
    texts = {k: v[1] for k, v in rows.items()}
    assert texts["r0"] == utterances[0][1] and texts["r1"] == utterances[1][1]
    assert texts["long-a"] == utterances[2][1] and texts["long-b"] == utterances[0][1]
    assert rows["r0"][0] == len(utterances[0][0]) and abs(rows["long-b"][0] - len(b)) <= 2
    assert result.problems == []
    root, manifest = read_manifest(str(out / "labeled.tsv"))
    assert sum((Path(root) / rel).is_relative_to(out / "cache") for _, rel, _ in manifest) == 2

    cuts = CutSet.from_manifests(RecordingSet.from_recordings(recordings[:2]))
    cuts.to_file(tmp_path / "cuts.jsonl.gz")
    import_lhotse("unlabeled", cuts=tmp_path / "cuts.jsonl.gz", out=out, progress=False)
    assert len(read_manifest(str(out / "unlabeled.tsv"))[1]) == 2 and not (out / "unlabeled.wrd").exists()
    CutSet.from_manifests(RecordingSet.from_recordings(recordings[:2]), SupervisionSet.from_segments(
        supervisions[:1])).to_file(tmp_path / "mixed.jsonl.gz")
    with pytest.raises(ImportProblem, match="1 cut.s. have no supervision .the first: 'r1"):
        import_lhotse("other", cuts=tmp_path / "mixed.jsonl.gz", out=tmp_path / "o", progress=False)


def test_resumes_after_a_kill_and_never_overwrites(tiny_corpus, tmp_path, monkeypatch):
    ls = tmp_path / "LibriSpeech" / "train-clean-100"
    write_librispeech(ls, tiny_utterances(tiny_corpus, "labeled")[:6])
    out = tmp_path / "data"
    calls = []
    real = common.prepare

    def dies_after_four(item, opts):
        if len(calls) == 4:
            raise KeyboardInterrupt  # a kill: the progress file holds the first four
        calls.append(item.key)
        return real(item, opts)

    monkeypatch.setattr(common, "prepare", dies_after_four)
    with pytest.raises(KeyboardInterrupt):
        import_librispeech(ls, "labeled", out=out, progress=False)
    assert len((out / ".import" / "labeled.jsonl").read_text().splitlines()) == 1 + 4  # the request, 4 items
    assert not (out / "labeled.tsv").exists()
    calls.clear()
    monkeypatch.setattr(common, "prepare", lambda item, opts: calls.append(item.key) or real(item, opts))
    import_librispeech(ls, "labeled", out=out, progress=False)
    assert len(calls) == 2 and len(imported(out, "labeled")) == 6
    assert not (out / ".import" / "labeled.jsonl").exists()
    calls.clear()
    import_librispeech(ls, "labeled", out=out, progress=False)  # done: nothing is read again
    assert calls == []
    with pytest.raises(ImportProblem, match="records another import of it.*--overwrite"):
        import_librispeech(ls, "labeled", out=out, resample=True, progress=False)
    import_librispeech(ls, "labeled", out=out, resample=True, overwrite=True, progress=False)
    assert json.loads((out / "import.json").read_text())["splits"]["labeled"]["options"]["resample"] is True
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "labeled.tsv").write_text("/somewhere\n")
    with pytest.raises(ImportProblem, match="labeled.tsv exist"):
        import_librispeech(ls, "labeled", out=tmp_path / "mine", progress=False)
    with pytest.raises(ImportProblem, match="dict.ltr.txt is 'fixed'"):
        import_librispeech(ls, "valid", out=out, dictionary="from-text", progress=False)


def test_cli_prints_the_command_that_fixes_a_refusal(tmp_path, capsys):
    sub = tmp_path / "LS" / "dev-clean" / "1" / "2"
    sub.mkdir(parents=True)
    sf.write(str(sub / "1-2-0000.flac"), np.zeros(22050), 22050)
    (sub / "1-2.trans.txt").write_text("1-2-0000 HELLO\n")
    args = ["--root", str(tmp_path / "LS"), "--out", str(tmp_path / "d"), "--splits", "valid=dev-clean",
            "--no-progress"]
    assert librispeech_main(args) == 2
    err = capsys.readouterr().err
    assert "1-2-0000.flac is 22050 Hz" in err
    assert f"rerun as: python -m data_prep.importers.librispeech {' '.join(args)} --resample" in err
    assert librispeech_main(args + ["--resample"]) == 0
    assert "valid: 1 rows" in capsys.readouterr().out


def test_every_command_line(tiny_corpus, tmp_path, capsys):
    from lhotse import Recording, RecordingSet

    from data_prep.importers import librilight, lhotse_manifest, table, unlabeled

    utterances = tiny_utterances(tiny_corpus, "test")
    folders = [f"{part}/{kind}" for part in [f"1h/{i}" for i in range(6)] + ["9h"] for kind in ("clean", "other")]
    for speaker, folder in enumerate(folders):
        write_librispeech(tmp_path / "librispeech_finetuning" / folder, utterances[speaker % 2:][:1],
                          speaker0=10 * speaker)
    (tmp_path / "t.csv").write_text("path,text\n" + "".join(
        f"librispeech_finetuning/9h/clean/{rel.relative_to(tmp_path / 'librispeech_finetuning/9h/clean')},x y\n"
        for rel in sorted((tmp_path / "librispeech_finetuning/9h/clean").rglob("*.flac"))))
    rec = Recording.from_file(next((tmp_path / "librispeech_finetuning/9h/other").rglob("*.flac")), recording_id="r")
    RecordingSet.from_recordings([rec]).to_file(tmp_path / "recs.jsonl.gz")
    out = str(tmp_path / "data")
    common_args = ["--out", out, "--no-progress", "--jobs", "2"]
    assert librilight.main(["--root", str(tmp_path / "librispeech_finetuning"), "--set", "1h", "--split", "labeled"]
                           + common_args) == 0
    assert unlabeled.main(["--root", str(tmp_path / "librispeech_finetuning/9h"), "--split", "unlabeled",
                           "--segment-seconds", "1"] + common_args) == 0
    assert table.main(["--table", str(tmp_path / "t.csv"), "--split", "valid"] + common_args) == 0
    assert lhotse_manifest.main(["--recordings", str(tmp_path / "recs.jsonl.gz"), "--split", "test"] + common_args) == 0
    printed = capsys.readouterr().out
    assert "labeled: 12 rows" in printed and "valid: 1 rows" in printed and "test: 1 rows" in printed
    record = json.loads((tmp_path / "data" / "import.json").read_text())
    # 1 s chunks, a tail under 1 s joins the chunk before it: a file of n samples gives n // 16000 rows
    assert record["splits"]["unlabeled"]["rows"] == sum(len(a) // 16000 for a, _ in utterances[:2])
    assert [record["splits"][s]["source"] for s in ("labeled", "unlabeled", "valid", "test")] == [
        "librilight-1h", "unlabeled", "table", "lhotse"]


def test_progress_of_an_import_with_other_options_is_not_reused(tiny_corpus, tmp_path, monkeypatch):
    ls = tmp_path / "train-clean-100"
    write_librispeech(ls, tiny_utterances(tiny_corpus, "labeled")[:4])
    out, calls, real = tmp_path / "data", [], common.prepare

    def dies_after_two(item, opts):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(item.key)
        return real(item, opts)

    monkeypatch.setattr(common, "prepare", dies_after_two)
    with pytest.raises(KeyboardInterrupt):
        import_librispeech(ls, "labeled", out=out, channel="mix", progress=False)
    calls.clear()
    monkeypatch.setattr(common, "prepare", lambda item, opts: calls.append(item.key) or real(item, opts))
    import_librispeech(ls, "labeled", out=out, channel=0, progress=False)
    assert len(calls) == 4
