"""Shared fixtures: the tiny synthetic corpus (built once per session) and CLI runners."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO))  # data_prep is a repository tool, not an installed package


def run_cli(args, cwd=REPO, check=True, timeout=600):
    """Run a command line (list form, no shell) with this Python's scripts first on PATH."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", PYTHONUNBUFFERED="1")
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, args))} exited {proc.returncode}\n--- stdout ---\n{proc.stdout[-6000:]}"
            f"\n--- stderr ---\n{proc.stderr[-6000:]}"
        )
    return proc


def hq(value) -> str:
    """A value quoted for a hydra override, as examples/hydra_quote.sh does (paths with spaces,
    quotes, commas or non-ASCII characters)."""
    return "'" + str(value).replace("'", "\\'") + "'"


def hydra_train(config_dir, config_name, data, save_dir, *overrides, cwd=REPO, check=True, user_dir="sslasr_plugin",
                allow_nonfinite=False):
    """A real fairseq-hydra-train run, shortened to a few updates.  A batch left out for a
    non-finite loss fails the run's check unless ``allow_nonfinite``."""
    args = [
        "fairseq-hydra-train", "--config-dir", config_dir, "--config-name", config_name,
        f"task.data={hq(data)}", f"checkpoint.save_dir={hq(save_dir)}", f"hydra.run.dir={hq(f'{save_dir}/hydra')}",
        "optimization.max_update=3", "dataset.validate_interval_updates=3", "checkpoint.save_interval_updates=3",
        "common.log_interval=1", "dataset.num_workers=0",
    ]
    if user_dir is not None:
        args.append(f"common.user_dir={user_dir}")
    proc = run_cli(args + list(overrides), cwd=cwd, check=check)
    if check and not allow_nonfinite and "non-finite loss" in proc.stdout + proc.stderr:
        raise AssertionError(f"{config_name}: a batch had a non-finite loss\n{proc.stdout[-6000:]}")
    return proc


def generate(data, checkpoint, subset="test", *extra, check=True, cwd=REPO):
    return run_cli(
        ["fairseq-generate", data, "--user-dir", "sslasr_plugin", "--task", "sslasr_audio_ctc",
         "--path", checkpoint, "--gen-subset", subset, "--scoring", "wer", "--post-process", "letter",
         "--max-tokens", "4000000", "--beam", "1", *extra],
        check=check, cwd=cwd,
    )


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    from data_prep.corpus import build_corpus

    return build_corpus(str(tmp_path_factory.mktemp("corpus") / "tiny"), preset="tiny", progress=False)


@pytest.fixture(scope="session")
def ctc_checkpoint(tiny_corpus, tmp_path_factory):
    """checkpoint_best.pt of a 3-update scratch_fbank run on the tiny corpus."""
    save_dir = tmp_path_factory.mktemp("ctc")
    hydra_train("examples/ctc", "scratch_fbank", tiny_corpus, save_dir)
    return save_dir / "checkpoint_best.pt"


@pytest.fixture
def corpus_copy(tiny_corpus, tmp_path):
    """A private copy of the tiny corpus (manifests rewritten to point at the copy)."""
    dst = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, dst)
    for tsv in dst.glob("*.tsv"):
        lines = tsv.read_text().splitlines()
        tsv.write_text("\n".join([str(dst)] + lines[1:]) + "\n")
    return dst
