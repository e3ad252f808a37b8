"""``python -m etcetera``: the ``etc`` command."""

from .cli import main

main()
