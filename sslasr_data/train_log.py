"""The numbers of a fairseq-hydra-train log (``hydra/hydra_train.log``): its validation lines and
training lines as dicts, and the config it prints.  The results pages, plots and the low-resource
runner read runs through this, so that every figure reads a log the same way.

    records = read_log(Path("exp/joint/hydra/hydra_train.log"))
    [(r["num_updates"], r["uer"]) for r in records["valid"]]

Each reader takes the log's path, or its ``text`` once read (:func:`log_text`), so that one that
wants several of them reads the file once.
"""
import re
from datetime import datetime
from pathlib import Path
from typing import Dict, List, Optional, Sequence

# `key value` (valid lines: "| uer 26.5 |") or `key=value` (train lines: "uer=26.5,"), a number,
# then a separator or the end of the line.
FIELD = re.compile(r"(\w+)[ =](-?[\d.]+(?:e-?\d+)?)(?=,|\s*\||\s*$)")


def fields(line: str) -> Dict[str, float]:
    """The numeric fields of one fairseq log line."""
    out = {}
    for key, value in FIELD.findall(line):
        try:
            out[key] = float(value)
        except ValueError:  # "1.2.3"
            pass
    return out


def log_text(path: Path) -> str:
    """The log's text; empty when there is no log (a run not started yet)."""
    path = Path(path)
    return path.read_text(errors="replace") if path.exists() else ""


def read_log(path: Optional[Path], subset: str = "valid", epoch_summaries: bool = True,
             text: Optional[str] = None) -> Dict[str, List[Dict[str, float]]]:
    """``{"valid": [...], "train": [...]}``: the fields of each validation line on ``subset`` and of
    each training line -- the per-interval ``train_inner`` lines and, with ``epoch_summaries``, the
    ``train`` line closing each epoch -- in log order.  A missing log gives empty lists (a run not
    started yet)."""
    records = {"valid": [], "train": []}
    for line in (log_text(path) if text is None else text).splitlines():
        if f"valid on '{subset}' subset" in line:
            records["valid"].append(fields(line))
        elif "[train_inner]" in line or (epoch_summaries and "[train][INFO]" in line):
            records["train"].append(fields(line.split("][INFO]", 1)[1]))
    return records


STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})\]")
START = "][fairseq_cli.train][INFO] - {"  # each launch prints its config first


def wall_seconds(path: Optional[Path], text: Optional[str] = None) -> Optional[float]:
    """Wall-clock seconds the run's launches spent, from the log's own timestamps: for each launch
    (it begins with the config print), its last line's time minus its first's, summed.  Not
    fairseq's ``wall`` meter: after a resume that meter reads 0 (its checkpointed time is dropped),
    so its largest value holds the first launch only.  None: no timestamped line."""
    total, first, last = 0.0, None, None
    for line in (log_text(path) if text is None else text).splitlines():
        m = STAMP.match(line)
        if not m:
            continue
        t = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").timestamp() + int(m.group(2)) / 1000
        if START in line and first is not None:
            total, first = total + last - first, None
        first = t if first is None else first
        last = t
    return None if first is None else total + last - first


def config_values(path: Optional[Path], group: str, keys: Sequence[str],
                  text: Optional[str] = None) -> Dict[str, Optional[str]]:
    """Each of ``keys``' value in config group ``group`` as the log prints the config (its first
    print), unquoted; None for a key, or every key, that the log does not hold.  One read of the log."""
    text = log_text(path) if text is None else text
    start = text.find(f"'{group}': {{")
    if start < 0:
        return {key: None for key in keys}
    depth, end = 0, start  # the group's dict ends where its braces close
    for end in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        if depth == 0 and text[end] == "}":
            break
    found = {key: re.compile(rf"'{re.escape(key)}': ('[^']*'|[^,}}]*)").search(text, start, end) for key in keys}
    return {key: m.group(1).strip("'") if m else None for key, m in found.items()}


def config_value(path: Optional[Path], group: str, key: str, text: Optional[str] = None) -> Optional[str]:
    """One key's value of :func:`config_values`."""
    return config_values(path, group, [key], text)[key]
