"""`.aoi/daemon/status.json`: what the running daemon is doing, for `aoi status`."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path


class StatusFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._written = ""

    def write(self, data: Mapping[str, object]) -> None:
        """Replace the file with `data` (atomically), unless that is what it holds."""
        text = json.dumps(data, indent=1)
        if text == self._written:
            return  # one write per change, not per tick
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.path)
        self._written = text
