"""One safe YAML reader for every YAML file bxlplan reads (catalog, scoring, scenarios).

YAML files are untrusted input (a scenario or scoring file comes from a user), so the
reader accepts only what these files need and refuses the rest with a message naming
the file and the line:

- no anchors or aliases (``&a`` / ``*a``): they let a 2 KB file expand to gigabytes
  ("billion laughs"), and no bxlplan file needs them;
- no tags beyond the standard plain values (``!!python/...``, ``!custom``, ``!!set``,
  merge keys ``<<`` are refused);
- no repeated key in a mapping (YAML would silently keep the last one);
- keys are plain scalars (text, numbers), never lists or mappings;
- a bounded size and nesting depth.

Parse errors become :class:`~bxlplan.errors.ConfigError` s with the file, line and column.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, cast

import yaml

from .errors import ConfigError

__all__ = ["MAX_BYTES", "compose_yaml", "construct", "load_yaml"]

# The largest shipped YAML file (layers/facilities.yaml) is about 9 KB and a scenario a
# few KB: a settings file a thousand times larger is a mistake, not a programme.
MAX_BYTES = 10_000_000

_STD = "tag:yaml.org,2002:"
# The plain values of YAML's core schema plus dates (PyYAML's safe loader resolves
# unquoted 2032-01-01 as a date); everything else needs a custom constructor.
ALLOWED_TAGS = frozenset(
    _STD + t for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")
)


class _Refused(yaml.MarkedYAMLError):
    """A construct the safe reader refuses (raised while composing)."""


class _Loader(yaml.SafeLoader):
    """PyYAML's pure-Python safe loader whose composer refuses anchors, aliases and
    non-standard tags before any node is built."""

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(
                problem=f"alias '*{event.anchor}' refused: bxlplan files may not use "
                "anchors or aliases (&name / *name); write the values out",
                problem_mark=cast(yaml.Mark, event.start_mark),
            )
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise _Refused(
                problem=f"anchor '&{anchor}' refused: bxlplan files may not use anchors "
                "or aliases (&name / *name); write the values out",
                problem_mark=event.start_mark,
            )
        tag = getattr(event, "tag", None)
        if tag not in (None, "!") and tag not in ALLOWED_TAGS:
            raise _Refused(
                problem=f"tag '{tag}' refused: only plain values (text, numbers, "
                "true/false, null, dates, lists, mappings) are allowed; remove the tag",
                problem_mark=event.start_mark,
            )
        return super().compose_node(parent, index)


def _where(source: str, mark: yaml.Mark | None) -> str:
    if mark is None:
        return source
    return f"{source}, line {mark.line + 1}, column {mark.column + 1}"


def _check_tag(node: yaml.Node, source: str) -> None:
    if node.tag not in ALLOWED_TAGS:
        what = "merge key '<<'" if node.tag == _STD + "merge" else f"'{node.value}'"
        raise ConfigError(
            f"{_where(source, node.start_mark)}: {what} is not a plain value "
            f"(it resolves to {node.tag}); quote it if it is text"
        )


def _check(node: yaml.Node, source: str, loader: _Loader) -> None:
    """Resolved tags, keys and scalar values of the tree, iteratively (no recursion)."""
    stack = [node]
    while stack:
        cur = stack.pop()
        _check_tag(cur, source)
        if isinstance(cur, yaml.ScalarNode):
            try:  # e.g. an impossible date 2023-13-45 is a ValueError in PyYAML
                loader.construct_object(cur)
            except (ValueError, OverflowError, yaml.YAMLError) as exc:
                raise ConfigError(
                    f"{_where(source, cur.start_mark)}: cannot read '{cur.value}': "
                    f"{exc}; quote it if it is text"
                ) from exc
        elif isinstance(cur, yaml.MappingNode):
            seen: dict[tuple[str, Any], yaml.Node] = {}
            for knode, vnode in cur.value:
                if not isinstance(knode, yaml.ScalarNode):
                    raise ConfigError(
                        f"{_where(source, knode.start_mark)}: a key must be a plain "
                        "word or number, not a list or mapping"
                    )
                _check_tag(knode, source)
                key = (knode.tag, loader.construct_object(knode))
                if key in seen:
                    first = seen[key].start_mark.line + 1
                    raise ConfigError(
                        f"{_where(source, knode.start_mark)}: key '{knode.value}' is "
                        f"repeated (first on line {first}); keep one of them"
                    )
                seen[key] = knode
                stack.append(knode)
                stack.append(vnode)
        else:
            stack.extend(cur.value)


def compose_yaml(
    path: str | os.PathLike[str],
    *,
    text: str | None = None,
    what: str = "file",
    max_bytes: int = MAX_BYTES,
) -> yaml.Node | None:
    """Read and check a YAML file; return its root node (``None`` when empty).

    Nodes keep the line of every key and value (``node.start_mark.line``, from 0) for
    error messages; :func:`construct` turns a node into Python values.

    Parameters
    ----------
    path
        The file; with ``text``, only the name used in messages.
    text
        The YAML text, when already read.
    what
        What the file is, for messages (``"scenario file"``, ``"catalog file"``).
    max_bytes
        Larger files are refused.

    Returns
    -------
    yaml.Node or None
        The root node; None for an empty file.

    Raises
    ------
    ConfigError
        The file is missing, a folder, too large, not UTF-8, not valid YAML, or uses
        an anchor, alias, tag, repeated key or non-scalar key; the message names the
        file and the line.

    Examples
    --------
    >>> root = compose_yaml("inline.yaml", text="name: josaphat\\nsurroundings_m: 800")
    >>> [(key.value, key.start_mark.line + 1) for key, _ in root.value]
    [('name', 1), ('surroundings_m', 2)]
    >>> compose_yaml("inline.yaml", text="a: &x 1\\nb: *x")
    Traceback (most recent call last):
    ...
    bxlplan.errors.ConfigError: inline.yaml, line 1, column 4: anchor '&x' refused: ...
    """
    source = str(path)
    if text is None:
        try:
            with open(path, "rb") as fh:
                raw = fh.read(max_bytes + 1)
        except FileNotFoundError as exc:
            raise ConfigError(f"{what} {source} does not exist") from exc
        except IsADirectoryError as exc:
            raise ConfigError(
                f"{what} {source} is a folder: give the YAML file"
            ) from exc
        if len(raw) > max_bytes:
            raise ConfigError(
                f"{what} {source} is larger than {max_bytes:,} bytes: that is not a "
                "settings file; check the path"
            )
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{what} {source} is not UTF-8 text (byte {exc.start}): save it as UTF-8"
            ) from exc
    elif len(text) > max_bytes:
        raise ConfigError(f"{what} {source} is larger than {max_bytes:,} characters")
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is not None:
            _check(root, source, loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        msg = " ".join(m for m in (exc.context, exc.problem) if m)
        prefix = "" if isinstance(exc, _Refused) else "not valid YAML: "
        raise ConfigError(f"{_where(source, mark)}: {prefix}{msg}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(
            f"{source}: the YAML is nested too deeply to be a bxlplan file"
        ) from None
    finally:
        loader.dispose()
    return root


def construct(node: yaml.Node) -> Any:
    """Python values of a node returned by :func:`compose_yaml` (or of a child).

    Parameters
    ----------
    node : yaml.Node
        A node of a checked document.

    Returns
    -------
    object
        dict, list, str, int, float, bool, None or date.

    Examples
    --------
    >>> root = compose_yaml("inline.yaml", text="phasing_year: 2032\\nsocial: [480]")
    >>> construct(root)
    {'phasing_year': 2032, 'social': [480]}
    >>> construct(root.value[1][1])  # the value of the second key
    [480]
    """
    return _Loader("").construct_document(node)


def load_yaml(
    path: str | os.PathLike[str],
    *,
    text: str | None = None,
    what: str = "file",
    max_bytes: int = MAX_BYTES,
) -> Any:
    """Read a YAML file safely: :func:`compose_yaml` then :func:`construct`.

    Use this for every YAML file bxlplan reads.

    Parameters
    ----------
    path : str or path-like
        The file; with ``text``, only the name used in messages.
    text : str, optional
        The YAML text, when already read.
    what : str, default "file"
        What the file is, for messages (``"scenario file"``, ``"catalog file"``).
    max_bytes : int
        Larger files are refused.

    Returns
    -------
    object
        The document's values (:func:`construct`); None for an empty file.

    Raises
    ------
    ConfigError
        As :func:`compose_yaml`.

    Examples
    --------
    >>> load_yaml("inline.yaml", text="a: 1\\nb: [x, y]")
    {'a': 1, 'b': ['x', 'y']}
    >>> load_yaml("inline.yaml", text="a: 1\\na: 2")
    Traceback (most recent call last):
    ...
    bxlplan.errors.ConfigError: inline.yaml, line 2, column 1: key 'a' is repeated
    (first on line 1); keep one of them
    """
    root = compose_yaml(Path(path), text=text, what=what, max_bytes=max_bytes)
    return None if root is None else construct(root)
