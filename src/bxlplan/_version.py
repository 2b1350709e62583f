"""The version of bxlplan, in a module of its own: modules inside the package import it
from here, never from the package root (which imports every layer, so an import of the
root from ``loading`` would be a hidden import of ``scenarios``)."""

__version__ = "0.1.0"
