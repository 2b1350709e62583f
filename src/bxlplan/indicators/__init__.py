"""Indicators: functional diversity, social mix and distance to services.

Functions over areas (``landuse_mix``, access per area) return Series or DataFrames
indexed like their input. The diversity and social indices (``shannon``, ``hill``,
``gini_simpson``, ``local_entropy``, ...) work row-wise: given a DataFrame they return a
Series indexed like it, given an array a plain NumPy array, one value per row. Formulas
and references are in each docstring (see also DOMAIN.md); every published column is
declared in the indicator registry (``registry.py``).
"""
