"""artstyle: neural style transfer (Gatys, Ecker & Bethge 2015) on the CPU or GPU."""

from artstyle.config import PRESETS, StyleConfig, preset
from artstyle.errors import ArtstyleError
from artstyle.stylizer import Step, StyleResult, Stylizer, iter_stylize, stylize

__all__ = [
    "PRESETS",
    "ArtstyleError",
    "Step",
    "StyleConfig",
    "StyleResult",
    "Stylizer",
    "iter_stylize",
    "preset",
    "stylize",
]
__version__ = "0.1.0"
