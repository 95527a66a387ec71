"""A node.toml for the tests that start ``fairnode`` commands against a test's catalog."""

from __future__ import annotations

from pathlib import Path

from node.config import Config


def write_config(tmp_path: Path, config: Config, extra: str = "") -> Path:
    """``tmp_path/node.toml`` naming ``config``'s node, data folder and database, followed by
    ``extra`` (more TOML: [federation] settings, [[federation.peers]] tables)."""
    path = tmp_path / "node.toml"
    path.write_text(
        f"""[node]
id = "{config.node.id}"
name = "Harvester"
base_url = "{config.node.base_url}"
data_dir = "{config.data_dir}"

[database]
url = "{config.database.url}"
{extra}""",
        encoding="utf-8",
    )
    return path
