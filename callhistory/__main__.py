"""``python -m callhistory`` runs the CLI."""

from callhistory.entry import main

main()
