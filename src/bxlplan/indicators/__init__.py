"""Indicators: functional diversity, social mix and distance to services.

Functions over areas (``landuse_mix``, access per area) return Series or DataFrames
indexed like their input; the diversity and social indices (``shannon``, ``hill``,
``gini_simpson``, ...) work row-wise on arrays and return plain NumPy arrays, one value
per row. Formulas and references are in each docstring (see also DOMAIN.md); every
published column is declared in the indicator registry (``registry.py``).
"""
