"""``python -m artstyle.apps.cli``: the ``artstyle`` command."""

from artstyle.apps.cli import main

main()
