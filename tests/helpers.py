"""Helpers shared by the tests: real fairseq-hydra-train / fairseq-generate runs, damaged audio."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def load_script(path: str, name: str):
    """A script of the repository that is not a package module (``examples/joint/curves.py``), imported
    as module ``name``."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def free_port() -> int:
    """A TCP port nothing listens on now, for a gloo group's rendezvous (tests run side by side)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    if check and not allow_nonfinite and "the batch is left out of the update" in proc.stdout + proc.stderr:
        raise AssertionError(f"{config_name}: a batch had a non-finite loss\n{proc.stdout[-6000:]}")
    return proc


def generate(data, checkpoint, subset="test", *extra, check=True, cwd=REPO):
    return run_cli(
        ["fairseq-generate", data, "--user-dir", "sslasr_plugin", "--task", "sslasr_audio_ctc",
         "--path", checkpoint, "--gen-subset", subset, "--scoring", "wer", "--post-process", "letter",
         "--max-tokens", "4000000", "--beam", "1", *extra],
        check=check, cwd=cwd,
    )


def nan_wav(corpus, split="labeled", row=0):
    """Rewrite one row's audio as float32 WAV with NaN samples (valid header, same length)."""
    rel = (corpus / f"{split}.tsv").read_text().splitlines()[1 + row].split("\t")[0]
    wav, rate = sf.read(corpus / rel, dtype="float32")
    wav[100:200] = np.nan
    sf.write(corpus / rel, wav, rate, subtype="FLOAT")
    return rel


class RunsShellCommand:
    """Pickles as a call to os.system: what a malicious checkpoint holds."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def compose_example(config_dir, config_name, *overrides):
    """An example config composed as fairseq-hydra-train composes it (fairseq's schema registered
    under the config's name, hydra's 1.1 defaults: fairseq's @hydra.main gives no version_base),
    as a plain dict; the hydra node is left out but for hydra.job.chdir."""
    from fairseq.dataclass.initialize import hydra_init
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    hydra_init(config_name)
    with initialize_config_dir(config_dir=str(Path(config_dir).resolve()), version_base="1.1"):
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    composed = OmegaConf.to_container(cfg, enum_to_str=True)
    composed["hydra"] = {"job": {"chdir": cfg.hydra.job.chdir}}
    return composed
