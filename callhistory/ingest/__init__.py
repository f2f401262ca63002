"""Ingest: call logs arriving from PBXs, through the API or files, into one idempotent service."""
