"""WSGI entry point for gunicorn: ``FAIRNODE_CONFIG=/srv/node.toml gunicorn 'node.wsgi:app'``."""

from __future__ import annotations

import os

from node.app import create_app
from node.config import load_config
from node.search.lineage import warm_up_in_background

_path = os.environ.get("FAIRNODE_CONFIG")
if not _path:
    raise RuntimeError("set FAIRNODE_CONFIG to the node's TOML configuration file")
app = create_app(load_config(_path))
# gunicorn imports this module in each worker (without --preload): each builds its own names
warm_up_in_background()
