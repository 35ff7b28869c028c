"""The recipe cards (docs/recipes/<method>.md) against the configs: every paper-recipe config,
composed through hydra as fairseq-hydra-train composes it, holds each value its card states,
and so does the demo config; a card row that drifts from its config fails here.

A card table is announced by
``<!-- recipe: CONFIG_DIR CONFIG_NAME PAPER_OVERRIDE... [| DEMO_OVERRIDE...] -->``: the paper
recipe is CONFIG_NAME with the paper overrides, the demo CONFIG_NAME with the demo ones.  Rows
whose first cell is a `dotted.config.key` are checked: the ``paper recipe`` and ``demo`` cells, where they hold a
`yaml value`, must equal the composed value (other cells, e.g. "not expressible", are prose).
"""
import argparse
import re
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO, compose_example

CARDS = sorted((REPO / "docs" / "recipes").glob("*.md"))
TABLE = re.compile(r"<!-- recipe: (\S+) (\S+) ([^|]*?)(?: \| (.*?))? -->")
CODE = re.compile(r"^`([^`]*)`$")


def compose(config_dir: str, name: str, overrides: tuple) -> dict:
    """The config fairseq-hydra-train runs: hydra's composition (``compose_example``), then, with
    the plugin registered, fairseq's defaults of each component and the interpolations resolved."""
    from fairseq import utils
    from fairseq.dataclass.initialize import add_defaults
    from fairseq.dataclass.utils import omegaconf_no_object_check
    from omegaconf import OmegaConf

    utils.import_user_module(argparse.Namespace(user_dir=str(REPO / "sslasr_plugin")))
    cfg = OmegaConf.create(compose_example(REPO / config_dir, name, "task.data=/data", *overrides))
    add_defaults(cfg)
    with omegaconf_no_object_check():
        return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)


def card_tables(path: Path):
    """[(config_dir, name, paper overrides, demo overrides, rows)] of a card; a row: (key, paper
    cell, demo cell)."""
    tables, header = [], None
    for line in path.read_text().splitlines():
        m = TABLE.search(line)
        if m:
            tables.append((m.group(1), m.group(2), tuple(m.group(3).split()), tuple((m.group(4) or "").split()), []))
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else None
        if not tables or cells is None:
            continue
        if header is None:
            header = [c.lower() for c in cells]
            continue
        key = CODE.match(cells[0])
        if key and re.fullmatch(r"[a-z_]+(\.[a-z_0-9]+)+", key.group(1)):
            tables[-1][4].append((key.group(1), cells[header.index("paper recipe")], cells[header.index("demo")]))
    return tables


TABLES = [(card.name, *t) for card in CARDS for t in card_tables(card)]


def test_every_paper_recipe_config_has_a_card():
    on_cards = {(d, o.split("=")[0][1:], o.split("=")[1]) for _, d, _, overrides, _, _ in TABLES for o in overrides
                if o.startswith("+")}
    configs = {(str(p.parent.parent.relative_to(REPO)), p.parent.name, p.stem)
               for group in ("gpu", "recipe") for p in (REPO / "examples").glob(f"*/{group}/*.yaml")}
    assert configs and configs <= on_cards, f"configs without a card: {sorted(configs - on_cards)}"


def _value(cell: str):
    m = CODE.match(cell)
    return yaml.safe_load(m.group(1)) if m else None


def _get(cfg: dict, key: str):
    for part in key.split("."):
        if not isinstance(cfg, dict) or part not in cfg:
            raise KeyError(f"{key}: no {part!r} in the composed config")
        cfg = cfg[part]
    return cfg


def _same(stated, actual) -> bool:
    if isinstance(stated, (int, float)) and not isinstance(stated, bool) and isinstance(actual, (int, float)):
        return actual == pytest.approx(stated, rel=1e-9)
    if isinstance(stated, list) and isinstance(actual, (list, tuple)):
        return len(stated) == len(actual) and all(_same(s, a) for s, a in zip(stated, actual))
    return stated == actual


@pytest.mark.parametrize("card, config_dir, name, overrides, demo_overrides, rows", TABLES,
                         ids=[f"{t[0]}:{t[2]}{''.join(t[3])}" for t in TABLES])
def test_card_values_are_the_configs(card, config_dir, name, overrides, demo_overrides, rows):
    paper, demo = compose(config_dir, name, overrides), compose(config_dir, name, demo_overrides)
    checked, wrong = 0, []
    for key, paper_cell, demo_cell in rows:
        for cfg, cell, which in ((paper, paper_cell, "paper recipe"), (demo, demo_cell, "demo")):
            if CODE.match(cell):
                checked += 1
                stated, actual = _value(cell), _get(cfg, key)
                if not _same(stated, actual):
                    wrong.append(f"{key} ({which}): card {stated!r}, config {actual!r}")
    assert checked >= 5, f"{card}: only {checked} values checked for {name} {overrides}"
    assert not wrong, f"{card} drifted from the configs:\n" + "\n".join(wrong)
