"""callhistory: multi-tenant call history for cloud PBXs (eTelecom ListCallLogs API)."""

__version__ = "0.1.0"
