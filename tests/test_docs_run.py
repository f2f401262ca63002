"""The docs' shell and Python blocks run as written against a live demo (the state `make run`
leaves: a demo tenant, `.demo-key` and `.demo-keys.env` in the working folder). Blocks fenced
```sh no-run``` or ```python no-run``` (operator set-ups, placeholders, long-running servers)
are shown, not run. The one liberty taken: the demo server listens on a free port, not 8080."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import start_serve

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(
    r"^```(?P<info>sh|bash|python)(?P<rest>[^\n]*)\n(?P<body>.*?)^```$", re.M | re.S
)


def blocks() -> list[tuple[str, str, str]]:
    found = []
    for page in PAGES:
        for match in _BLOCK.finditer(page.read_text()):
            if "no-run" in match.group("rest"):
                continue
            line = page.read_text()[: match.start()].count("\n") + 1
            found.append(
                (f"{page.relative_to(ROOT)}:{line}", match.group("info"), match.group("body"))
            )
    return found


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    folder = tmp_path_factory.mktemp("make-run")
    (folder / "docs").symlink_to(ROOT / "docs")
    url = f"sqlite:///{folder / 'callhistory.db'}"
    command = [sys.executable, "-m", "callhistory"]
    subprocess.run([*command, "migrate", "--database", url], check=True, cwd=folder)
    subprocess.run(
        [*command, "demo", "--calls", "600", "--database", url, "--save-key", ".demo-key",
         "--save-keys", ".demo-keys.env"],
        check=True, cwd=folder, capture_output=True,
    )  # fmt: skip
    process, base = start_serve(url)
    try:
        yield folder, base
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_docs_have_runnable_blocks() -> None:
    assert len(blocks()) >= 3


@pytest.mark.parametrize(("where", "language", "body"), blocks(), ids=[b[0] for b in blocks()])
def test_a_documented_block_runs(
    demo: tuple[Path, str], where: str, language: str, body: str
) -> None:
    folder, base = demo
    text = body.replace("http://127.0.0.1:8080", base)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    run = ["bash", "-euo", "pipefail", "-c", text] if language != "python" else [
        sys.executable, "-c", text
    ]  # fmt: skip
    result = subprocess.run(
        run, cwd=folder, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"{where}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, where
    if result.stdout.lstrip().startswith("{"):
        answer = json.loads(result.stdout)
        assert "code" not in answer, f"{where}: {answer}"  # an error envelope
        assert answer.get("call_logs", [None]), f"{where}: no call in the demo data matched"
    assert result.stdout.strip() or (folder / "calls.csv").exists(), f"{where} printed nothing"
