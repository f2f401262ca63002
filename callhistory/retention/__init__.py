"""Retention: removing every tenant's calls older than a cutoff."""
