"""`make audit`: pip-audit over requirements.lock, read for what it could actually check.

pip-audit reports "No known vulnerabilities found" even when it could look none of the
packages up (a network that answers for pypi.org but has no vulnerability data): that is a
skip, said as one, not a pass. Exit 1 on any known vulnerability, 0 otherwise.
"""

from __future__ import annotations

import json
import subprocess
import sys


def main() -> int:
    found = subprocess.run(
        [sys.executable, "-m", "pip_audit", "--require-hashes", "--disable-pip",
         "-r", "requirements.lock", "-f", "json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    try:
        report = json.loads(found.stdout)
    except json.JSONDecodeError:
        print(f"pip-audit skipped: it could not run ({found.stderr.strip()[-300:]})")
        return 0
    dependencies = report["dependencies"]
    audited = [d for d in dependencies if "skip_reason" not in d]
    vulnerable = [d for d in audited if d.get("vulns")]
    for dependency in vulnerable:
        ids = ", ".join(v["id"] for v in dependency["vulns"])
        print(f"{dependency['name']} {dependency['version']}: {ids}")
    if not audited:
        print(f"pip-audit skipped: none of the {len(dependencies)} locked packages could be "
              "looked up (no vulnerability database reachable from here)")  # fmt: skip
        return 0
    print(f"pip-audit: {len(audited)} of {len(dependencies)} packages checked, "
          f"{len(vulnerable)} with known vulnerabilities")  # fmt: skip
    return 1 if vulnerable else 0


if __name__ == "__main__":
    sys.exit(main())
