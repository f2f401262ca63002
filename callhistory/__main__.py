"""``python -m callhistory`` runs the CLI."""

from callhistory.cli import main

main()
