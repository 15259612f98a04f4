"""The ``artstyle`` command (:mod:`~artstyle.apps.cli.main`), its options built from the settings
table (:mod:`~artstyle.apps.cli.options`), and its commands by what they do: painting
(:mod:`~artstyle.apps.cli.painting`), the study (:mod:`~artstyle.apps.cli.study`) and the studio
(:mod:`~artstyle.apps.cli.serve`)."""

from artstyle.apps.cli import painting, serve, study  # noqa: F401 (each registers its commands)
from artstyle.apps.cli.main import main

__all__ = ["main"]
