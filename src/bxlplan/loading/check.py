"""``bxlplan check``: validate every layer of the catalog in a data folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from ..errors import BxlplanError
from .catalog import catalog
from .expect import implausibilities
from .facilities import facility_summary
from .load import load

__all__ = ["LayerCheck", "check_data", "list_layers"]


Status = Literal["ok", "missing", "broken"]


@dataclass
class LayerCheck:
    """The outcome of loading one layer: ``ok``, ``missing`` or ``broken``.

    Parameters
    ----------
    layer : str
        The catalog name of the layer.
    required : bool
        Whether an assessment needs the layer.
    status : {"ok", "missing", "broken"}
        ``missing``: no file of the layer in the data folder; ``broken``: a file that
        does not load or holds implausible values.
    features : int, optional
        The number of features loaded.
    source : str, optional
        The file the layer was read from.
    messages : list of str
        What loading reported, and the problems found.
    details : dict
        Extra tables (``summary`` of the facilities, ``network`` of the streets).

    Examples
    --------
    >>> LayerCheck("streets", required=True, status="missing").failed
    True
    """

    layer: str
    required: bool
    status: Status
    features: int | None = None
    source: str | None = None
    messages: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """Whether a required layer is missing or broken."""
        return self.required and self.status in ("missing", "broken")


def check_data(data: Path) -> list[LayerCheck]:
    """Load every catalog layer from ``data`` and report what is present and sound.

    Parameters
    ----------
    data : Path
        The data folder.

    Returns
    -------
    list of LayerCheck
        One per catalog layer, in the order of the catalog.

    Examples
    --------
    >>> import tempfile
    >>> checks = check_data(Path(tempfile.mkdtemp()))  # an empty folder
    >>> sorted({c.status for c in checks}), any(c.failed for c in checks)
    (['broken', 'missing'], True)
    """
    results = []
    for name, spec in catalog().items():
        if not spec.files and spec.kind != "facilities":
            results.append(LayerCheck(name, spec.required, "missing"))
            continue
        try:
            obj = load(name, data)
        except BxlplanError as exc:
            missing = "is not in the data folder" in str(exc)
            results.append(
                LayerCheck(
                    name,
                    spec.required,
                    "missing" if missing else "broken",
                    messages=[str(exc)],
                )
            )
            continue
        meta = obj.attrs.get("bxlplan", {})
        prefix = f"{data}/"
        messages = [m.replace(prefix, "") for m in meta.get("report", [])]
        problems = implausibilities(spec, obj)
        messages += problems
        ok = not problems
        result = LayerCheck(
            name,
            spec.required,
            "ok" if ok else "broken",
            features=len(obj),
            source=meta.get("source"),
            messages=messages,
        )
        if spec.kind == "facilities":
            result.details["summary"] = facility_summary(obj)
        if spec.kind == "network":
            result.details["network"] = meta.get("network")
        results.append(result)
    return results


def list_layers(data: Path | None) -> pd.DataFrame:
    """The catalog as a table: layer, group, source, licence, presence and features.

    Parameters
    ----------
    data : Path or None
        The data folder; None lists the catalog only (nothing present).

    Returns
    -------
    DataFrame
        ``layer``, ``group``, ``required``, ``source`` (the file found, relative to
        ``data``), ``official`` (the official dataset), ``licence``, ``present`` and
        ``features`` (the count, for vector layers).

    Examples
    --------
    >>> table = list_layers(None)
    >>> "streets" in set(table["layer"]), bool(table["present"].any())
    (True, False)
    """
    rows = []
    for name, spec in catalog().items():
        found = spec.find_file(data) if data is not None else None
        if spec.kind == "facilities" and data is not None:
            src = spec.raw["sources"]["poi"]["path"]
            found = (data / src, {}) if (data / src).is_file() else None
        features = None
        if found is not None and spec.kind == "vector":
            import pyogrio

            try:
                features = pyogrio.read_info(found[0], layer=found[1].get("layer"))[
                    "features"
                ]
            except Exception:  # unreadable files are reported by `check`
                features = None
        rows.append(
            {
                "layer": name,
                "group": spec.group,
                "required": spec.required,
                "source": str(found[0].relative_to(data))
                if found and data is not None
                else "",
                "official": (spec.fetch or {}).get("typename")
                or (spec.fetch or {}).get("dataset")
                or "",
                "licence": spec.licence,
                "present": found is not None,
                "features": features,
            }
        )
    return pd.DataFrame(rows).astype({"features": "object"})
