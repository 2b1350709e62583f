"""Hatch build hook: the map assets travel in the wheel and the sdist.

Offline maps inline Leaflet and leaflet.markercluster, npm packages pinned by
``package-lock.json`` and never committed. This hook copies the files a map needs
from ``node_modules/`` into the build artefacts:

- wheel: ``bxlplan/_assets/<path as in node_modules>`` (found by
  ``bxlplan.exports.offline.asset_dir``), so ``pip install bxlplan-*.whl`` alone
  makes maps;
- sdist: ``map_assets/<same paths>``, so a wheel builds from the sdist without npm.

What is copied: the files of ``ASSETS`` in ``src/bxlplan/exports/offline.py`` (read as a
literal, without importing bxlplan), the images their stylesheets refer to
(``CSS_URL``, inlined as data: URIs), and each package's licence and package.json.
Versions are checked against ``package-lock.json``. Without ``node_modules/`` (and not
building from an sdist) the hook runs ``npm ci``; without npm it stops with a message.
Editable installs read the checkout's ``node_modules/`` directly: nothing to copy.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

OFFLINE = "src/bxlplan/exports/offline.py"
WHEEL_DIR = "bxlplan/_assets"
SDIST_DIR = "map_assets"
LICENCE = re.compile(r"(?i)^(mit-)?(licen[cs]e|copying)(\.[a-z]+)?$")


def _literals(path: Path, names: tuple[str, ...]) -> dict:
    """Module-level literal assignments of a Python file, without running it."""
    found = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id in names:
                    found[target.id] = ast.literal_eval(node.value)
    missing = set(names) - set(found)
    if missing:
        raise RuntimeError(f"{path}: no literal {', '.join(sorted(missing))}")
    return found


def _package(rel: str) -> str:
    """npm package of a path inside node_modules (scoped packages have two parts)."""
    parts = PurePosixPath(rel).parts
    return "/".join(parts[:2]) if parts[0].startswith("@") else parts[0]


def _pinned(root: Path) -> dict[str, str]:
    lock = json.loads((root / "package-lock.json").read_text(encoding="utf-8"))
    return {
        key[len("node_modules/") :]: meta["version"]
        for key, meta in lock.get("packages", {}).items()
        if key.startswith("node_modules/") and "version" in meta
    }


def needed_files(src: Path, root: Path) -> list[str]:
    """Paths (relative to ``src``, a node_modules-like folder) that the wheel must carry.

    Raises RuntimeError when ``src`` is incomplete or holds other versions than
    package-lock.json pins."""
    lit = _literals(root / OFFLINE, ("ASSETS", "CSS_URL"))
    assets = sorted(set(lit["ASSETS"].values()))
    missing = [rel for rel in assets if not (src / rel).is_file()]
    if missing:
        raise RuntimeError(f"{src} lacks {', '.join(missing)}")
    files = set(assets)
    # images referred to by the stylesheets (inline_assets makes them data: URIs)
    for rel in assets:
        if not rel.endswith(".css"):
            continue
        base = PurePosixPath(rel).parent
        text = (src / rel).read_text(encoding="utf-8")
        for ref in re.findall(lit["CSS_URL"], text):
            ref = ref.strip().strip("'\"")
            if not ref or "#" in ref or ":" in ref:  # url(#default#VML), URLs
                continue
            # normalise a/b/../c; nothing outside the stylesheet's package
            parts: list[str] = []
            for part in (base / ref).parts:
                if part == "..":
                    parts = parts[:-1]
                elif part != ".":
                    parts.append(part)
            img_rel = "/".join(parts)
            if (
                parts
                and _package(img_rel) == _package(rel)
                and (src / img_rel).is_file()
            ):
                files.add(img_rel)
    # each package's licence and package.json (name, version, licence field)
    pinned = _pinned(root)
    for pkg in sorted({_package(rel) for rel in assets}):
        meta = json.loads((src / pkg / "package.json").read_text(encoding="utf-8"))
        if pinned.get(pkg) != meta.get("version"):
            raise RuntimeError(
                f"{src / pkg} is {pkg} {meta.get('version')}, package-lock.json pins "
                f"{pinned.get(pkg)}: run `npm ci`"
            )
        licences = [p.name for p in (src / pkg).iterdir() if LICENCE.match(p.name)]
        if not licences:
            raise RuntimeError(f"{src / pkg} has no licence file")
        files.update(f"{pkg}/{name}" for name in licences)
        files.add(f"{pkg}/package.json")
    return sorted(files)


class MapAssetsHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name == "wheel" and version == "editable":
            return  # an editable install reads the checkout's node_modules/
        root = Path(self.root)
        src, files = self._source(root)
        dest = WHEEL_DIR if self.target_name == "wheel" else SDIST_DIR
        for rel in files:
            build_data["force_include"][str(src / rel)] = f"{dest}/{rel}"

    def _source(self, root: Path) -> tuple[Path, list[str]]:
        errors = []
        # a checkout's node_modules, else the copies an sdist carries
        for src in (root / "node_modules", root / SDIST_DIR):
            if src.is_dir():
                try:
                    return src, needed_files(src, root)
                except (OSError, RuntimeError) as exc:
                    errors.append(str(exc))
        if errors:  # present but incomplete or stale: do not replace it behind the back
            raise RuntimeError("bxlplan map assets: " + "; ".join(errors))
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError(
                "bxlplan's wheel carries Leaflet and leaflet.markercluster from npm: "
                "install npm and run `npm ci` in the checkout (package-lock.json pins "
                "them), or build from bxlplan's sdist, which carries them"
            )
        self.app.display_info("bxlplan: no node_modules/, running `npm ci`")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=root, check=True)
        src = root / "node_modules"
        return src, needed_files(src, root)
