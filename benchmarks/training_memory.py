"""Memory of a training run with the plugin's heap trimming against stock fairseq's behaviour.

Runs the same fairseq-hydra-train command twice, side by side: once as the plugin ships, once
with the two trims of ``sslasr_plugin.patches`` undone (``Trainer.train_step`` and
``EpochBatchIterator._get_iterator_for_epoch`` back to fairseq's), which is fairseq's own
behaviour.  Every ``--every`` seconds it reads each run's private dirty memory
(``/proc/PID/smaps_rollup``) for the trainer and for its data-loader workers; it prints the peak
and the last reading of each, and their ratio (docs/design.md, "Memory").

    PATH=$PWD/.venv/bin:$PATH python benchmarks/training_memory.py --data data/demo --updates 300
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

REPO = Path(__file__).resolve().parent.parent

# The launcher: fairseq-hydra-train's entry point in this process, after the plugin's import;
# its first argument says which run it is, and for "stock" the two trims are taken off first.
LAUNCH = """
import sys
import sslasr_plugin  # applies the patches
if sys.argv.pop(1) == "stock":
    from fairseq import trainer
    from fairseq.data import iterators
    from sslasr_plugin.patches import without_patches
    without_patches(trainer.Trainer, "train_step", "trimmed_heap")
    without_patches(iterators.EpochBatchIterator, "_get_iterator_for_epoch", "trimmed_before_workers")
from fairseq_cli.hydra_train import cli_main
cli_main()
"""


def private_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            return sum(int(line.split()[1]) for line in f if line.startswith("Private_Dirty")) / 1024
    except OSError:
        return 0.0


def children(pid: int) -> List[int]:
    """The processes forked by any thread of ``pid`` (fairseq's data loaders fork from a buffer thread)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def command(kind: str, data: str, out: str, updates: int, config: List[str]) -> List[str]:
    config_dir, name, *overrides = config
    return [sys.executable, "-c", LAUNCH, kind, "--config-dir", str(REPO / config_dir), "--config-name", name,
            f"common.user_dir={REPO / 'sslasr_plugin'}", f"task.data={data}", f"checkpoint.save_dir={out}",
            f"hydra.run.dir={out}/hydra", f"optimization.max_update={updates}", "checkpoint.no_save=true",
            "dataset.validate_interval_updates=100", "common.log_interval=50", *overrides]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a corpus with labeled, unlabeled and valid (bash run.sh demo)")
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--every", type=float, default=2.0, help="seconds between readings")
    parser.add_argument("--config", nargs="+", default=["examples/joint", "joint", "+recipe=paper"],
                        help="config dir, config name, overrides (default: joint CPC + CTC, the paper's recipe)")
    args = parser.parse_args(argv)
    if not Path("/proc/self/smaps_rollup").exists():
        sys.exit("error: needs Linux's /proc/PID/smaps_rollup")
    data = str(Path(args.data).resolve())
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    with tempfile.TemporaryDirectory() as tmp:
        runs = {}
        for kind in ("plugin", "stock"):
            with open(f"{tmp}/{kind}.log", "w") as log:  # the child keeps its own descriptor
                runs[kind] = subprocess.Popen(command(kind, data, f"{tmp}/{kind}", args.updates, args.config),
                                              cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        peak: Dict[str, Dict[str, float]] = {k: {"trainer": 0.0, "workers": 0.0, "both": 0.0} for k in runs}
        last: Dict[str, Dict[str, float]] = {k: {} for k in runs}
        while any(p.poll() is None for p in runs.values()):
            for kind, proc in runs.items():
                if proc.poll() is not None:
                    continue
                now = {"trainer": private_mb(proc.pid), "workers": sum(private_mb(c) for c in children(proc.pid))}
                now["both"] = now["trainer"] + now["workers"]
                peak[kind] = {k: max(peak[kind][k], v) for k, v in now.items()}
                last[kind] = now
            time.sleep(args.every)
        for kind, proc in runs.items():
            if proc.returncode:
                sys.exit(f"error: the {kind} run failed (rc {proc.returncode}):\n"
                         + Path(f"{tmp}/{kind}.log").read_text()[-3000:])
    print(f"{' '.join(args.config)}, {args.updates} updates, private dirty memory in MB "
          f"(peak / last reading before the end)\n")
    print("| run | trainer | data-loader workers | both |")
    print("|---|---|---|---|")
    for kind in runs:
        print(f"| {kind} | " + " | ".join(f"{peak[kind][k]:.0f} / {last[kind].get(k, 0):.0f}"
                                          for k in ("trainer", "workers", "both")) + " |")
    ratio = peak["plugin"]["both"] / max(peak["stock"]["both"], 1e-9)
    print(f"\nplugin / stock, peak of trainer + workers: {ratio:.2f}")


if __name__ == "__main__":
    main()
