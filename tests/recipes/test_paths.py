"""Paths with spaces, quotes, commas, parentheses and non-ASCII characters, in directory names
and in audio file names, through every tool: corpus synthesis, the data check, the example
scripts (hydra quoting), fairseq-hydra-train, fairseq-generate, the WER report, pseudo-labels,
HuBERT label dumping.  No tool builds a shell string from a path."""
import re
import shutil
import sys

import pytest

from tests.helpers import generate, hydra_train, run_cli

pytestmark = pytest.mark.slow

WEIRD = "d'ata, ü (1) \"q\""


def test_ctc_demo_script_in_a_directory_with_quotes_commas_and_non_ascii(tmp_path):
    root = tmp_path / WEIRD
    data, exp, lm = root / "corpus ü", root / "exp 'ctc'", root / "lm, ü"
    proc = run_cli(["env", f"DATA={data}", f"EXP={exp}", f"LM={lm}", "PRESET=tiny", "bash", "examples/ctc/run_demo.sh",
                    "optimization.max_update=3", "dataset.validate_interval_updates=3",
                    "checkpoint.save_interval_updates=3", "dataset.num_workers=0"])
    assert (data / "labeled.tsv").read_text().splitlines()[0] == str(data)
    assert (exp / "checkpoint_best.pt").is_file()
    table = (exp / "results.md").read_text()
    for row in ("test greedy", "test_ood greedy", r"test word LM \+ lexicon", "test_ood letter LM, lexicon-free"):
        assert re.search(rf"^\| {row} \| 8 \|", table, flags=re.M), table
    assert "Traceback" not in proc.stderr
    # A second call decodes again but does not train: the best checkpoint stays what it was.
    best = (exp / "checkpoint_best.pt").read_bytes()
    run_cli(["env", f"DATA={data}", f"EXP={exp}", "PRESET=tiny", "LM_DECODE=0", "bash", "examples/ctc/run_demo.sh",
             "optimization.max_update=3", "dataset.num_workers=0"])
    assert (exp / "checkpoint_best.pt").read_bytes() == best
    assert (exp / "hydra" / "hydra_train.log").read_text().count("done training") == 1


@pytest.mark.parametrize("script", ["ctc", "csl", "joint", "slimipl", "ssl"])
def test_a_path_hydra_cannot_take_stops_every_demo_script_first(tmp_path, script):
    """A backslash at the end (or before a quote) cannot be quoted for hydra: the script stops
    with exit 2 and says so, before any tool runs, instead of passing fairseq an empty value."""
    bad = tmp_path / "exp\\"
    proc = run_cli(["env", f"EXP={bad}", f"DATA={tmp_path / 'none'}", "bash", f"examples/{script}/run_demo.sh"],
                   check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "hydra cannot take" in proc.stderr and "rename it" in proc.stderr
    assert not (tmp_path / "none").exists() and not bad.exists()


def _weird_copy(corpus, dst):
    """The corpus copied under ``dst``, every audio file renamed to a name with a quote, a comma,
    a hash, parentheses, spaces and non-ASCII letters (manifests rewritten, labels unchanged)."""
    shutil.copytree(corpus, dst)
    renamed = {}  # nested subsets (labeled_10min) list their parent's files: renamed once
    for tsv in sorted(dst.glob("*.tsv")):
        lines = tsv.read_text().splitlines()
        rows = []
        for i, line in enumerate(lines[1:]):
            rel, samples = line.split("\t")
            if rel not in renamed:
                renamed[rel] = f"{rel.rsplit('/', 1)[0]}/it's ü #{i}, (é) {tsv.stem}.wav"
                (dst / rel).rename(dst / renamed[rel])
            rows.append(f"{renamed[rel]}\t{samples}")
        tsv.write_text("\n".join([str(dst)] + rows) + "\n", encoding="utf-8")
    return dst


def test_audio_names_with_quotes_and_non_ascii_through_every_tool(tiny_corpus, ctc_checkpoint, tmp_path):
    data = _weird_copy(tiny_corpus, tmp_path / WEIRD / "corpus")
    assert "it's ü #0, (é) labeled.wav" in (data / "labeled.tsv").read_text(encoding="utf-8")
    check = run_cli([sys.executable, "-m", "data_prep.check", "--data", data, "--labels", "ltr", "--read-audio"])
    summaries = re.findall(r"^(\w+): (\d+) rows, (\d+) problem", check.stdout, flags=re.M)
    assert len(summaries) == len(list(data.glob("*.tsv"))) and all(p == "0" for _, _, p in summaries), check.stdout
    exp = tmp_path / WEIRD / "exp"
    hydra_train("examples/ctc", "scratch_fbank", data, exp)
    assert (exp / "checkpoint_best.pt").is_file()
    out = tmp_path / WEIRD / "decode"
    generate(data, exp / "checkpoint_best.pt", "test", "--results-path", out)
    assert re.search(r"WER: \d+\.\d+", (out / "generate-test.txt").read_text().splitlines()[-1])
    report = run_cli([sys.executable, "-m", "sslasr_plugin.decoding.report", f"test={out / 'generate-test.txt'}"])
    assert re.search(r"^\| test \| 8 \|", report.stdout, flags=re.M)
    pl = tmp_path / WEIRD / "pseudo labels"
    run_cli([sys.executable, "-m", "data_prep.pseudo_labels", "--teacher", ctc_checkpoint, "--data", data,
             "--splits", "valid", "--out", pl, "--no-progress"])
    assert len((pl / "valid.plab").read_text().splitlines()) == 8
    km = tmp_path / WEIRD / "km"
    run_cli([sys.executable, "-m", "data_prep.hubert_labels", "--data", data, "--out", km, "--features", "mfcc",
             "--clusters", "4", "--steps", "5", "--splits", "unlabeled", "valid", "--no-progress"])
    assert len((km / "valid.km").read_text().splitlines()) == 8
