"""Call logs: the ListCallLogs method, its filters and keyset cursors."""
