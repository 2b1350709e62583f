"""Writing an assessment: GeoPackage (scored areas + shortage zones) and CSV.

Writes are atomic: each file is written under a temporary name in the output folder and
renamed when complete; an existing file is only replaced with ``overwrite=True``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pandas as pd
import pyogrio

from ..errors import DataError
from ..loading.fetch import atomic_write
from .assess import Assessment

__all__ = ["write_assessment"]


def _check_target(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise DataError(
            f"{path} already exists: pass --overwrite (overwrite=True) to replace it"
        )


def write_assessment(
    result: Assessment, out: str | Path, formats: list[str], *, overwrite: bool = False
) -> list[Path]:
    """Write ``assessment.gpkg`` and/or ``assessment.csv`` into ``out``."""
    out = Path(out)
    unknown = sorted(set(formats) - {"gpkg", "csv"})
    if unknown:
        raise DataError(
            f"unknown format(s) {unknown}: this version writes gpkg and csv"
        )
    out.mkdir(parents=True, exist_ok=True)
    meta = result.areas.attrs.get("bxlplan", {})
    written = []
    if "gpkg" in formats:
        target = out / "assessment.gpkg"
        _check_target(target, overwrite)
        fd, tmp = tempfile.mkstemp(prefix=".assessment.", suffix=".gpkg", dir=out)
        os.close(fd)
        os.unlink(tmp)
        try:
            areas = result.areas.copy()
            areas.attrs = {}
            pyogrio.write_dataframe(
                areas, tmp, layer="areas", driver="GPKG",
                layer_metadata={"bxlplan": json.dumps(meta, default=str)},
            )  # fmt: skip
            for cat, zone in result.shortage_zones.groupby("category"):
                pyogrio.write_dataframe(
                    zone.reset_index(drop=True),
                    tmp,
                    layer=f"shortage_{cat}",
                    driver="GPKG",
                    append=False,
                )
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)
        written.append(target)
    if "csv" in formats:
        target = out / "assessment.csv"
        _check_target(target, overwrite)
        table = pd.DataFrame(result.areas.drop(columns=result.areas.geometry.name))
        atomic_write(target, table.to_csv(index=False).encode("utf-8"))
        atomic_write(
            out / "assessment.provenance.json",
            json.dumps(meta, indent=2, default=str).encode("utf-8"),
        )
        written.append(target)
    return written
