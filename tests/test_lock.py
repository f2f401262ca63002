"""requirements.lock is the service's environment: every dependency pinned in pyproject.toml is
locked at the same version, and every locked package carries hashes."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_lock_pins_what_pyproject_pins_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = {}
    for requirement in [*project["dependencies"], *project["optional-dependencies"]["server"]]:
        name, version = re.fullmatch(
            r"([A-Za-z0-9_.-]+)(?:\[[^]]*\])?==(\S+)", requirement
        ).groups()  # type: ignore[union-attr]
        pinned[name.lower().replace("_", "-")] = version
    text = (ROOT / "requirements.lock").read_text()
    entries = re.findall(
        r"^([a-z0-9_.-]+)==(\S+) \\\n((?:    --hash=sha256:[0-9a-f]{64}.*\n)+)", text, re.M
    )
    locked = {name: version for name, version, _ in entries}
    assert {name: locked.get(name) for name in pinned} == pinned
    assert len(entries) == len(re.findall(r"^[a-z0-9_.-]+==", text, re.M))
