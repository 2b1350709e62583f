"""Provenance of a loaded layer: where it came from and what loading it changed.

A module of its own, below every loader (``load``, ``facilities``, ``network``,
``population``), so that they all record provenance the same way without importing one
another.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .._io import run_timestamp
from .._version import __version__
from .catalog import LayerSpec

__all__ = ["provenance", "sha256_file"]


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of a file.

    Parameters
    ----------
    path : Path
        The file.

    Returns
    -------
    str
        64 hexadecimal digits.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "empty.txt"
    >>> _ = path.write_bytes(b"")
    >>> sha256_file(path)[:16]
    'e3b0c44298fc1c14'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def provenance(
    spec: LayerSpec | None, path: Path, report: list[str], **extra: Any
) -> dict[str, Any]:
    """Build the provenance record stored in ``.attrs["bxlplan"]``.

    Parameters
    ----------
    spec : LayerSpec or None
        The catalog layer, or None for a user's file (licence "user-supplied").
    path : Path
        The file read; its sha256 is recorded, and a ``<file>.provenance.json`` beside
        it (written by ``bxlplan fetch``) is included as ``fetched``.
    report : list of str
        What loading changed (dropped, repaired, kept as text, ...).
    **extra
        Further keys of the record.

    Returns
    -------
    dict
        ``layer``, ``source``, ``sha256``, ``licence``, ``attribution``,
        ``loaded_at``, ``report`` and the ``extra`` keys.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "mine.geojson"
    >>> _ = path.write_text("{}")
    >>> record = provenance(None, path, ["nothing changed"], year=2024)
    >>> record["licence"], record["report"], record["year"]
    ('user-supplied', ['nothing changed'], 2024)
    """
    record: dict[str, Any] = {
        "layer": spec.name if spec else None,
        "source": str(path),
        "sha256": sha256_file(path),
        "licence": spec.licence if spec else "user-supplied",
        "attribution": spec.attribution if spec else "",
        "loaded_at": run_timestamp().isoformat(),
        "bxlplan_version": __version__,
        "report": list(report),
    }
    sidecar = path.with_name(path.name + ".provenance.json")
    if sidecar.is_file():  # written by `bxlplan fetch`
        try:
            record["fetched"] = json.loads(sidecar.read_text(encoding="utf-8"))
            record["source_url"] = record["fetched"].get("url")
        except json.JSONDecodeError:
            report.append(f"{sidecar}: unreadable provenance record, ignored")
    record.update(extra)
    return record
