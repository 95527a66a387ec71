"""The shipped example configuration stays valid (its source folders aside)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from node.config import ConfigError, parse_config

REPO = Path(__file__).resolve().parents[1]


def test_example_config_has_no_problem_but_missing_folders():
    data = tomllib.loads((REPO / "config" / "node.example.toml").read_text(encoding="utf-8"))
    try:
        parse_config(data, path=REPO / "config" / "node.example.toml", env=False)
    except ConfigError as e:
        others = [p for p in e.problems if "is not a readable folder" not in p.why]
        assert others == [], others
