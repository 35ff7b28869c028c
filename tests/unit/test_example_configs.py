"""Every example config, variant (+variant=), GPU size (+gpu=) and recipe (+recipe=), composed
through hydra as fairseq-hydra-train composes it, holds the values recorded in example_configs.json (the
settings in which it differs from fairseq's defaults); and no config sets a key that one of
the shared files of sslasr_plugin/config/, merged after it, would override.

After an intended change to a config, record it again and review the diff:
    python -m tests.unit.test_example_configs --record
"""
import json
import sys
from pathlib import Path

import pytest
from fairseq.dataclass.configs import FairseqConfig
from omegaconf import OmegaConf

from tests.helpers import REPO, compose_example

EXAMPLES = REPO / "examples"
SHARED = REPO / "sslasr_plugin" / "config"
RECORDED = Path(__file__).with_name("example_configs.json")


def example_cases():
    """(config dir, config name, overrides) of every composition the examples document."""
    cases = [(f.parent, f.stem, ()) for f in sorted(EXAMPLES.glob("*/*.yaml"))]
    for d in sorted(EXAMPLES.glob("*/variant")):
        cases += [(d.parent, d.parent.name, (f"+variant={v.stem}",)) for v in sorted(d.glob("*.yaml"))]
    for d in sorted(EXAMPLES.glob("*/gpu")):
        cases += [(d.parent, g.stem, (f"+gpu={g.stem}",)) for g in sorted(d.glob("*.yaml"))]
    for d in sorted(EXAMPLES.glob("*/recipe")):
        cases += [(d.parent, d.parent.name, (f"+recipe={r.stem}",)) for r in sorted(d.glob("*.yaml"))]
    return cases


def case_id(config_dir, name, overrides):
    return " ".join([f"{config_dir.name}/{name}", *overrides])


def flat(tree, prefix=""):
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def differs_from_fairseq(composed):
    defaults = flat(OmegaConf.to_container(OmegaConf.structured(FairseqConfig), enum_to_str=True))
    return {k: v for k, v in flat(composed).items() if k not in defaults or defaults[k] != v}


CASES = example_cases()


@pytest.mark.parametrize("case", CASES, ids=[case_id(*c) for c in CASES])
def test_config_composes_to_the_recorded_values(case):
    config_dir, name, overrides = case
    recorded = json.loads(RECORDED.read_text())[case_id(*case)]
    composed = differs_from_fairseq(compose_example(config_dir, name, *overrides))
    assert composed == recorded, {k: (recorded.get(k), composed.get(k)) for k in set(recorded) | set(composed)
                                  if recorded.get(k, KeyError) != composed.get(k, KeyError)}


def test_every_composition_is_recorded():
    assert set(json.loads(RECORDED.read_text())) == {case_id(*c) for c in CASES}


def _shared_keys(entry):
    """Dotted keys that a defaults entry such as /config/ctc or /config/adam@optimizer sets."""
    path, _, package = entry.partition("@")
    assert path.startswith("/config/"), f"{entry}: shared settings live in {SHARED}"
    file = SHARED / f"{path[len('/config/'):]}.yaml"
    if not package:
        assert file.read_text().startswith("# @package _global_"), f"{file}: no package header, list it with @<package>"
    keys = flat(OmegaConf.to_container(OmegaConf.load(file)))
    return file, {f"{package}.{k}" if package else k for k in keys}


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*/*.yaml")), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_no_key_is_set_both_in_a_config_and_in_a_shared_file(path):
    own = OmegaConf.to_container(OmegaConf.load(path))
    defaults = own.pop("defaults", [])
    assert defaults[:1] == ["_self_"], f"{path}: list _self_ first, so that the shared files are merged after it"
    own_keys = set(flat(own))
    for entry in defaults[1:]:
        file, shared = _shared_keys(entry)
        clash = sorted(own_keys & shared)
        assert not clash, f"{path} sets {clash}, which {file} sets too and overrides: keep each key in one place"


if __name__ == "__main__" and sys.argv[1:] == ["--record"]:
    RECORDED.write_text(json.dumps({case_id(d, n, o): differs_from_fairseq(compose_example(d, n, *o)) for d, n, o in CASES},
                                   indent=1, sort_keys=True) + "\n")
