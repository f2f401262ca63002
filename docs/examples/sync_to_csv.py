"""Copy a tenant's calls of a period into a CSV file, one row per call.

python docs/examples/sync_to_csv.py http://127.0.0.1:8080 "$KEY" 2026-11-01 2026-11-30 calls.csv
"""

from __future__ import annotations

import csv
import sys

from callhistory.client import CallHistoryError, Client


def main(base_url: str, key: str, date_from: str, date_to: str, path: str) -> int:
    columns = ["id", "started_at", "direction", "caller", "callee", "call_state", "duration"]
    try:
        with Client(base_url, key) as client, open(path, "w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow([*columns, "answered_by"])
            for call in client.list_call_logs(date_from=date_from, date_to=date_to, limit=1000):
                answered = [t.target_number for t in call.call_targets if t.status == "answered"]
                writer.writerow([getattr(call, c) for c in columns] + [" ".join(answered)])
    except CallHistoryError as error:
        print(f"{error.code}: {error.msg} {error.meta}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:6]))
