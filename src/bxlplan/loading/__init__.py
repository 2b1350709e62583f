"""Loading: the layer catalog, readers, validation, the street network, the
dasymetric population and the fetcher of official layers."""

from __future__ import annotations

from .catalog import LayerSpec, catalog, data_dir, get_spec
from .load import classify_functions, load, load_polygons

__all__ = [
    "LayerSpec",
    "catalog",
    "classify_functions",
    "data_dir",
    "get_spec",
    "load",
    "load_polygons",
]
