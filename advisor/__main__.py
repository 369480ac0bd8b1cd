"""``python -m advisor`` runs the mailadvisor CLI."""

from advisor.cli import main

main()
