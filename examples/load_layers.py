"""Load every Brussels layer of the reference pack and print a summary.

Run: ``BXLPLAN_DATA=../shared/data/brussels python examples/load_layers.py``
"""

from __future__ import annotations

import bxlplan
from bxlplan.loading.facilities import facility_summary


def main() -> None:
    hoods = bxlplan.load("neighbourhoods")
    income = bxlplan.load("income_equivalised")
    hoods = hoods.merge(income[["code", "value", "value_flag"]], on="code", how="left")
    print(
        f"{len(hoods)} neighbourhoods, {hoods['value'].notna().sum()} with a 2023 median income"
    )
    poorest = hoods.nsmallest(3, "value")[["code", "name_fr", "name_nl", "value"]]
    print("lowest median equivalised income (EUR):")
    print(poorest.to_string(index=False))

    communes = bxlplan.load("communes")
    region = bxlplan.load("region")
    print(f"{len(communes)} communes; region {region.area.sum() / 1e6:.1f} km²")

    streets = bxlplan.load("streets")
    net = streets.attrs["bxlplan"]["network"]
    print(
        f"street network: {net['edges']:,} edges, {net['kept_length_km']:,.0f} km "
        f"({net['largest_component_share']:.1%} of {net['total_length_km']:,.0f} km kept)"
    )

    facilities = bxlplan.load("facilities")
    print("facilities per category:")
    print(facility_summary(facilities).to_string(index=False))


if __name__ == "__main__":
    main()
