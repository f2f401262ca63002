"""Keep a local SQLite copy of a tenant's calls in step with the service, from the change feed.

python docs/examples/sync_to_sqlite.py http://127.0.0.1:8080 "$KEY" copy.db          # forever
python docs/examples/sync_to_sqlite.py http://127.0.0.1:8080 "$KEY" copy.db --once   # catch up

Each page of changes is applied in one local transaction together with the token that follows
it, so a crash never loses a change nor applies one twice; a restart goes on from the token.
"""

from __future__ import annotations

import sqlite3
import sys
import time

import msgspec

from callhistory.client import CallHistoryError, Client

SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (id TEXT PRIMARY KEY, started_at TEXT, call_log TEXT);
CREATE TABLE IF NOT EXISTS feed (token TEXT NOT NULL);
"""


def sync(client: Client, db: sqlite3.Connection) -> int:
    """Apply every change since the stored token; how many."""
    stored = db.execute("SELECT token FROM feed").fetchone()
    feed = client.changes(since=stored[0] if stored else "")
    applied = 0
    with db:  # one transaction: the changes and the token that follows them
        for change in feed:
            if change.type == "upsert" and change.call_log is not None:
                call = change.call_log
                db.execute(
                    "INSERT OR REPLACE INTO calls VALUES (?, ?, ?)",
                    (call.id, call.started_at, msgspec.json.encode(call).decode()),
                )
            elif change.type == "delete":
                db.execute("DELETE FROM calls WHERE id = ?", (change.id,))
            elif change.type == "purge":  # retention: every call that started before it
                db.execute("DELETE FROM calls WHERE started_at < ?", (change.started_before,))
            applied += 1
        db.execute("DELETE FROM feed")
        db.execute("INSERT INTO feed VALUES (?)", (feed.token,))
    return applied


def main(base_url: str, key: str, path: str, *flags: str) -> int:
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    try:
        with Client(base_url, key) as client:
            while True:
                applied = sync(client, db)
                print(f"applied {applied} changes", flush=True)
                if "--once" in flags:
                    return 0
                time.sleep(5)
    except CallHistoryError as error:
        print(f"{error.code}: {error.msg} {error.meta}", file=sys.stderr)
        return 1
    finally:
        db.close()


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
