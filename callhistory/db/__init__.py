"""Shared database kit: table metadata, engine factory, migrations, the transaction boundary."""
