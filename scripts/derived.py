"""Writing the derived data files the build scripts ship under ``data/``."""

from __future__ import annotations

import gzip
import json
from pathlib import Path


def write_json_gz(path: Path, payload: dict) -> None:
    """``payload`` as compact, key-sorted JSON, gzipped with mtime 0: the same input gives the same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(path, "wb", mtime=0) as fh:
        fh.write(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())
