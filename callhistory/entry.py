"""The ``callhistory`` command's entry point: the CLI needs the server extra, which a client-only
install (``pip install callhistory``) lacks; say so in one line instead of a traceback."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from callhistory.cli import main as run
    except ModuleNotFoundError as error:
        sys.exit(
            f"error (config): the callhistory command needs the server: "
            f"pip install 'callhistory[server]' ({error.name} is not installed)"
        )
    run()
