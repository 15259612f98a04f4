"""artstyle: neural style transfer (Gatys, Ecker & Bethge 2015) on the CPU or GPU."""

from artstyle._version import __version__
from artstyle.config import PRESETS, StyleConfig, preset
from artstyle.engine.stylizer import Step, StyleResult, Stylizer, iter_stylize, stylize
from artstyle.errors import ArtstyleError

__all__ = [
    "PRESETS",
    "ArtstyleError",
    "Step",
    "StyleConfig",
    "StyleResult",
    "Stylizer",
    "__version__",
    "iter_stylize",
    "preset",
    "stylize",
]
