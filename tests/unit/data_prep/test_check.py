"""data_prep.check: every kind of bad row found with its file, line and fix; --skip-bad writes a
clean copy and a report, never touching the input."""
import subprocess

import numpy as np
import soundfile as sf

from data_prep import check


def _rows(corpus, split):
    return [line.split("\t")[0] for line in (corpus / f"{split}.tsv").read_text().splitlines()[1:]]


def _damage(corpus):
    """Row 1 stereo, row 2 at 8 kHz, row 3 truncated, row 4 empty transcript, row 5 a symbol not
    in the dictionary, row 6 FLAC whose header is fine but whose samples do not decode; rows 7-8
    stay good."""
    rel = _rows(corpus, "valid")
    wav, rate = sf.read(corpus / rel[0])
    sf.write(corpus / rel[0], np.stack([wav, wav], 1), rate)
    subprocess.run(["sox", corpus / rel[1], "-r", "8000", corpus / "r8.wav"], check=True)
    (corpus / "r8.wav").replace(corpus / rel[1])
    data = (corpus / rel[2]).read_bytes()
    (corpus / rel[2]).write_bytes(data[: len(data) // 2])  # truncated
    wav, rate = sf.read(corpus / rel[5])
    flac = corpus / "corrupt.flac"
    sf.write(flac, wav, rate)
    data = bytearray(flac.read_bytes())
    data[len(data) // 2: len(data) // 2 + 200] = b"\xab" * 200
    flac.write_bytes(bytes(data))
    lines = (corpus / "valid.tsv").read_text().splitlines()
    lines[6] = f"corrupt.flac\t{len(wav)}"
    (corpus / "valid.tsv").write_text("\n".join(lines) + "\n")
    rel[5] = "corrupt.flac"
    ltr = (corpus / "valid.ltr").read_text().splitlines()
    ltr[3], ltr[4] = "", "C A F \u00c9 |"
    (corpus / "valid.ltr").write_text("\n".join(ltr) + "\n")
    return rel


def test_every_problem_named_with_file_line_and_fix(corpus_copy, capsys):
    rel = _damage(corpus_copy)
    assert check.main(["--data", str(corpus_copy), "--splits", "valid", "--labels", "ltr", "--read-audio"]) == 1
    out = capsys.readouterr().out.splitlines()
    tsv, ltr = corpus_copy / "valid.tsv", corpus_copy / "valid.ltr"
    assert f"{tsv} line 2: {corpus_copy / rel[0]} has 2 channels; the models take mono audio: sox in.wav -c 1 out.wav" in out
    assert any(line.startswith(f"{tsv} line 3: ") and "8000 Hz" in line and "sox in.wav -r 16000" in line for line in out)
    assert any(line.startswith(f"{tsv} line 4: ") and "the file was truncated" in line for line in out)
    assert any(line.startswith(f"{ltr} line 4: empty transcript for {rel[3]}") for line in out)
    assert any(line.startswith(f"{ltr} line 5: symbols missing from dict.ltr.txt: \u00c9") for line in out)
    assert any(line.startswith(f"{tsv} line 7: ") and "samples do not decode" in line for line in out)
    assert out[-1] == "valid: 8 rows, 6 problem(s) in 6 row(s)"
    # Without --read-audio the corrupt FLAC's header passes.
    assert check.main(["--data", str(corpus_copy), "--splits", "valid", "--labels", "ltr"]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "valid: 8 rows, 5 problem(s) in 5 row(s)"


def test_skip_bad_writes_clean_copy_and_report_input_untouched(corpus_copy, tmp_path, capsys):
    rel = _damage(corpus_copy)
    before = {p: p.read_bytes() for p in corpus_copy.glob("valid.*")}
    out = tmp_path / "clean"
    args = ["--data", str(corpus_copy), "--splits", "valid", "labeled", "--labels", "ltr", "--read-audio",
            "--skip-bad", str(out)]
    assert check.main(args) == 0
    assert {p: p.read_bytes() for p in corpus_copy.glob("valid.*")} == before
    assert _rows(out, "valid") == rel[6:]
    assert (out / "valid.ltr").read_text().splitlines() == (corpus_copy / "valid.ltr").read_text().splitlines()[6:]
    assert len(_rows(out, "labeled")) == 24  # a clean split is copied whole
    report = (out / "skipped.txt").read_text().splitlines()
    assert report[0] == "split\tfile\tline\tproblem" and len(report) == 7
    assert all(r.startswith("valid\t") for r in report[1:])
    # The clean copy passes, and OUT is not overwritten without --overwrite.
    assert check.main(["--data", str(out), "--labels", "ltr", "--read-audio"]) == 0
    capsys.readouterr()
    assert check.main(args) == 2
    assert "not empty" in capsys.readouterr().err
    assert check.main(args + ["--overwrite"]) == 0


def test_frame_labels_wrong_rate_is_not_fixed_by_dropping_rows(corpus_copy, tmp_path, capsys):
    labels = tmp_path / "km"
    labels.mkdir()
    samples = [int(line.split("\t")[1]) for line in (corpus_copy / "valid.tsv").read_text().splitlines()[1:]]
    counts = [(n - 400) // 160 + 1 for n in samples]  # MFCC frames: 100/s
    counts[2] += 40  # one row off at the right rate
    (labels / "valid.km").write_text("".join("1 " * c + "\n" for c in counts))
    (labels / "dict.km.txt").write_text("1 1\n")
    base = ["--data", str(corpus_copy), "--splits", "valid", "--label-dir", str(labels), "--frame-labels", "km"]
    assert check.main(base + ["--label-rate", "100"]) == 1
    out = capsys.readouterr().out
    assert f"{labels / 'valid.km'} line 3: {counts[2]} labels for" in out and "problem(s) in 1 row(s)" in out
    assert check.main(base + ["--label-rate", "50", "--skip-bad", str(tmp_path / "clean")]) == 2
    out = capsys.readouterr().out
    assert "8 of 8 lines do not fit 50 labels/s; the labels come at ~99" in out and "--label-rate 100" in out
    assert not (tmp_path / "clean" / "valid.tsv").exists()
