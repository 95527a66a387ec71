"""Configuration: declarations, validation messages, environment overrides, starter file."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from node.config import ConfigError, declared_settings, load_config, parse_config, starter_toml

REPO = Path(__file__).resolve().parents[1]


def minimal(tmp_path: Path, **extra_source) -> dict:
    (tmp_path / "images").mkdir(exist_ok=True)
    return {
        "node": {
            "id": "demo",
            "name": "Demo imaging facility",
            "base_url": "http://127.0.0.1:5000",
        },
        "harvest": {
            "sources": [{"name": "microscopy", "path": str(tmp_path / "images"), **extra_source}]
        },
    }


def problems_of(data: dict, tmp_path: Path) -> list[str]:
    with pytest.raises(ConfigError) as e:
        parse_config(data, path=tmp_path / "node.toml", env=False)
    return [f"{p.key}: {p.why}" for p in e.value.problems]


def test_minimal_config_from_the_issue_loads(tmp_path: Path):
    (tmp_path / "data" / "microscopy").mkdir(parents=True)
    cfg_file = tmp_path / "node.toml"
    cfg_file.write_text(
        """
[node]
id = "demo"
name = "Demo imaging facility"
base_url = "http://127.0.0.1:5000"
level = "institute"
data_dir = "var"

[[harvest.sources]]
name = "microscopy"
path = "data/microscopy"
schedule = "0 2 * * *"
visibility = "public"
publish = "auto"
"""
    )
    cfg = load_config(cfg_file)
    assert cfg.node.id == "demo"
    assert cfg.data_dir == tmp_path / "var"  # relative to the config file, not the cwd
    assert cfg.resolve(cfg.sources[0].path) == tmp_path / "data" / "microscopy"
    assert cfg.database_url == f"sqlite:///{tmp_path / 'var' / 'catalog.sqlite3'}"
    assert cfg.source("microscopy").publish == "auto"


def test_every_problem_is_reported_with_key_and_reason(tmp_path: Path):
    data = minimal(tmp_path, schedule="61 * * * *", visibility="world", license="CC-BY-9.9")
    data["node"]["id"] = "Demo Node"
    data["node"]["level"] = "planet"
    data["node"]["base_url"] = "ftp://x"
    data["node"]["colour"] = "blue"
    data["web"] = {"port": "eighty"}
    data["harvest"]["sources"].append({"name": "microscopy", "path": "/nonexistent/folder"})
    got = problems_of(data, tmp_path)
    joined = "\n".join(got)
    assert "node.id: 'Demo Node' must be a slug" in joined
    assert (
        "node.level: 'planet' is not one of institute, university, national, international"
        in joined
    )
    assert "node.base_url: 'ftp://x' is not an http(s) URL" in joined
    assert "node.colour: unknown setting" in joined
    assert "web.port: expected int, got 'eighty'" in joined
    assert "harvest.sources[0].schedule: '61 * * * *'" in joined
    assert "harvest.sources[0].visibility: 'world' is not one of" in joined
    assert "harvest.sources[0].license:" in joined
    assert "CC-BY-9.9" in joined
    assert "harvest.sources[1].name: duplicate source 'microscopy'" in joined
    assert "harvest.sources[1].path: '/nonexistent/folder' is not a readable folder" in joined


def test_required_settings_and_bad_toml(tmp_path: Path):
    got = problems_of({"node": {"name": "x"}}, tmp_path)
    assert "node.id: required setting is missing" in got
    bad = tmp_path / "bad.toml"
    bad.write_text("[node\nid = 1\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: -: not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "missing.toml")


def test_password_in_file_is_refused(tmp_path: Path):
    data = minimal(tmp_path)
    data["database"] = {"url": "postgresql+psycopg://fair:s3cret@db/fair"}
    assert any("FAIRNODE_DATABASE_URL" in p for p in problems_of(data, tmp_path))


def test_environment_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FAIRNODE_NODE_NAME", "From env")
    monkeypatch.setenv("FAIRNODE_WEB_PORT", "5123")
    monkeypatch.setenv("FAIRNODE_DATABASE_URL", "postgresql+psycopg://u:pw@h/db")
    cfg = parse_config(minimal(tmp_path), path=tmp_path / "node.toml")
    assert cfg.node.name == "From env"
    assert cfg.web.port == 5123
    assert cfg.database_url == "postgresql+psycopg://u:pw@h/db"
    monkeypatch.setenv("FAIRNODE_WEB_PORT", "lots")
    with pytest.raises(ConfigError, match="environment FAIRNODE_WEB_PORT: web.port: expected int"):
        parse_config(minimal(tmp_path), path=tmp_path / "node.toml")


def test_starter_toml_is_valid_and_mentions_every_setting(tmp_path: Path):
    text = starter_toml("lab-a", "Lab A", str(tmp_path))
    data = tomllib.loads(text)
    cfg = parse_config(data, path=tmp_path / "node.toml", env=False)
    assert cfg.node.id == "lab-a"
    assert cfg.sources[0].path == str(tmp_path)
    for key, _field in declared_settings():
        name = key.rsplit(".", 1)[-1]
        if name != "sources":
            assert re.search(rf"^#? ?{re.escape(name)} =", text, re.M), key


def test_every_setting_is_documented():
    doc = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = [key for key, _ in declared_settings() if f"`{key}`" not in doc]
    assert not missing, f"settings missing from docs/configuration.md: {missing}"


def test_settings_table_in_docs_is_current():
    from node.config import settings_markdown

    doc = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert settings_markdown() in doc, "regenerate the table: python -m node.config"
