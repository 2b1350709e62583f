"""Loading: the layer catalog, readers, validation, the street network, the
dasymetric population and the fetcher of official layers.

Inside, the modules form no cycle: ``catalog``, ``readers``, ``validate`` and
``provenance`` at the bottom, then ``network`` and ``transit``, ``layers`` (one catalog
layer from its file), ``facilities`` (several layers classified) and ``load`` (the
dispatcher, and the user's own polygons) on top.
"""

from __future__ import annotations

from .catalog import LayerSpec, catalog, data_dir, get_spec
from .layers import land_use_functions
from .load import classify_functions, load, load_polygons, polygon_areas
from .provenance import provenance, sha256_file

__all__ = [
    "LayerSpec",
    "catalog",
    "classify_functions",
    "data_dir",
    "get_spec",
    "land_use_functions",
    "load",
    "load_polygons",
    "polygon_areas",
    "provenance",
    "sha256_file",
]
