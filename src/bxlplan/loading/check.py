"""``bxlplan check``: validate every layer of the catalog in a data folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import BxlplanError
from .catalog import catalog
from .expect import implausibilities
from .facilities import facility_summary
from .load import load

__all__ = ["LayerCheck", "check_data", "list_layers"]


@dataclass
class LayerCheck:
    """The outcome of loading one layer: ``ok``, ``warning``, ``missing`` or ``broken``."""

    layer: str
    required: bool
    status: str
    features: int | None = None
    source: str | None = None
    messages: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.required and self.status in ("missing", "broken")


def check_data(data: Path) -> list[LayerCheck]:
    """Load every catalog layer from ``data`` and report what is present and sound."""
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
    """The catalog as a table: layer, group, source, licence, presence and features."""
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
                "source": str(found[0].relative_to(data)) if found else "",
                "official": (spec.fetch or {}).get("typename")
                or (spec.fetch or {}).get("dataset")
                or "",
                "licence": spec.licence,
                "present": found is not None,
                "features": features,
            }
        )
    return pd.DataFrame(rows).astype({"features": "object"})
