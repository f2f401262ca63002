"""The operator's docs stay current: every setting and every CLI command is documented."""

from __future__ import annotations

from pathlib import Path

import typer.main

from callhistory.cli import app
from callhistory.kit.config import Settings

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_setting_is_documented() -> None:
    text = (DOCS / "operations.md").read_text()
    missing = [
        name for name in Settings.__struct_fields__ if f"CALLHISTORY_{name.upper()}" not in text
    ]
    assert missing == []


def test_every_command_is_documented() -> None:
    text = (DOCS / "operations.md").read_text()
    group = typer.main.get_group(app)
    commands = []
    for name, command in group.commands.items():
        subcommands = getattr(command, "commands", None)
        commands += (
            [f"callhistory {name} {sub}" for sub in subcommands]
            if subcommands
            else [f"callhistory {name}"]
        )
    missing = [c for c in commands if c not in text]
    assert missing == []
