"""Indicators: functional diversity, social mix and distance to services.

Functions take GeoDataFrames / arrays and return Series or DataFrames indexed like their
input. Formulas and references are in each docstring (see also DOMAIN.md).
"""
