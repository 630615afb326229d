"""eqcell: recurrent cells from a paper's equations.

    import eqcell
    code = eqcell.generate("slstm")            # module text (keras target)
    SLSTMCell = eqcell.load("slstm")           # the class, compiled in memory
    SLSTM = eqcell.load_layer("slstm")         # its full-sequence layer
    ir = eqcell.analyze("slstm")               # the CellIR, for tools
"""
__version__ = "0.1.0"

from .api import analyze, generate, load, load_layer  # noqa: E402
from .errors import Span, SpecError  # noqa: E402

__all__ = ["analyze", "generate", "load", "load_layer", "Span", "SpecError", "__version__"]
