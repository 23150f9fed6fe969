#!/usr/bin/env python3
"""Print a chart's values table from the `# --` comments in its values.yaml.

A `# -- text` comment (continued on the following `#` lines) documents the key right
below it; `# -- (type) text` overrides the type shown. The default is the key's value
in values.yaml. Keys inside list items are documented by the list's own key.

  ci/values-table.py                 print the table of charts/hashstack/values.yaml
  ci/values-table.py --write FILE    replace the table between the markers in FILE
  ci/values-table.py --check FILE    exit 1 when FILE's table differs from values.yaml's
  --values PATH                      another chart's values.yaml (the subcharts')
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
VALUES = ROOT / "charts" / "hashstack" / "values.yaml"
START = "<!-- values-table:start -->"
END = "<!-- values-table:end -->"

_KEY = re.compile(r"^(?P<indent>\s*)(?P<item>-\s+)?(?P<key>[A-Za-z0-9_.-]+):(\s|$)")
_DOC = re.compile(r"^\s*# -- ?(?:\((?P<type>[^)]+)\)\s*)?(?P<text>.*)$")
_MORE = re.compile(r"^\s*#(?! --)\s?(?P<text>.*)$")


@dataclass(frozen=True)
class Row:
    key: str
    type: str
    default: str
    description: str


def documented_keys(text: str) -> dict[str, tuple[str | None, str]]:
    """Dotted key -> (type override, description) for every key with a `# --` comment."""
    docs: dict[str, tuple[str | None, str]] = {}
    stack: list[tuple[int, str | None]] = []  # (indent, key); None inside list items
    pending: tuple[str | None, list[str]] | None = None
    for line in text.splitlines():
        if not line.strip():
            pending = None
            continue
        doc = _DOC.match(line)
        if doc:
            pending = (doc["type"], [doc["text"].strip()])
            continue
        more = _MORE.match(line)
        if more:
            if pending is not None:
                pending[1].append(more["text"].strip())
            continue
        match = _KEY.match(line)
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if stripped.startswith("-"):
            # A list item: nothing below it is a path of its own.
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, None))
            pending = None
            continue
        if not match:
            pending = None
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parents = [key for _, key in stack]
        key = match["key"]
        stack.append((indent, key))
        if pending is not None and None not in parents:
            dotted = ".".join([*(p for p in parents if p is not None), key])
            docs[dotted] = (pending[0], " ".join(t for t in pending[1] if t))
        pending = None
    return docs


def lookup(values: Any, dotted: str) -> Any:
    node = values
    for part in dotted.split("."):
        node = node[part]
    return node


# bool before int: True is an int too.
_TYPE_NAMES = ((bool, "bool"), (int, "int"), (float, "float"), (str, "string"), (list, "list"),
               (dict, "object"))  # fmt: skip


def type_name(value: Any) -> str:
    return next((name for kind, name in _TYPE_NAMES if isinstance(value, kind)), "null")


def rows(values_path: Path = VALUES) -> list[Row]:
    text = values_path.read_text()
    values = yaml.safe_load(text)
    out = []
    for key, (override, description) in documented_keys(text).items():
        value = lookup(values, key)
        default = json.dumps(value, separators=(",", ":"))
        out.append(Row(key, override or type_name(value), default, description))
    return out


def leaf_keys(node: Any, prefix: str = "") -> list[str]:
    """Dotted paths of every leaf (scalars, lists and empty maps count as leaves)."""
    if isinstance(node, dict) and node:
        out = []
        for key, value in node.items():
            out.extend(leaf_keys(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return [prefix]


def undocumented(values_path: Path = VALUES) -> list[str]:
    """Leaves that neither they nor any parent key carry a `# --` comment."""
    text = values_path.read_text()
    documented = set(documented_keys(text))
    missing = []
    for leaf in leaf_keys(yaml.safe_load(text)):
        parts = leaf.split(".")
        if not any(".".join(parts[:n]) in documented for n in range(1, len(parts) + 1)):
            missing.append(leaf)
    return missing


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(values_path: Path = VALUES) -> str:
    lines = ["| Key | Type | Default | Description |", "| --- | --- | --- | --- |"]
    for row in rows(values_path):
        lines.append(
            f"| `{row.key}` | {row.type} | `{_cell(row.default)}` | {_cell(row.description)} |"
        )
    return "\n".join(lines) + "\n"


def between_markers(text: str) -> str | None:
    """The text between the values-table markers, or None when they are absent."""
    if START not in text or END not in text:
        return None
    return text.split(START, 1)[1].split(END, 1)[0].strip("\n") + "\n"


def replace_between_markers(text: str, body: str) -> str:
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    return f"{head}{START}\n{body}{END}{tail}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", type=Path, help="replace the table between the markers")
    group.add_argument("--check", type=Path, help="exit 1 when the table is out of date")
    parser.add_argument("--values", type=Path, default=VALUES, help="the chart's values.yaml")
    args = parser.parse_args(argv)
    body = table(args.values)
    target = args.write or args.check
    if target is None:
        sys.stdout.write(body)
        return 0
    text = target.read_text()
    current = between_markers(text)
    if current is None:
        print(f"{target}: no {START} ... {END} markers", file=sys.stderr)
        return 1
    if args.check:
        if current != body:
            print(
                f"{target}: values table is out of date; "
                f"run ci/values-table.py --values {args.values} --write {target}"
            )
            return 1
        return 0
    target.write_text(replace_between_markers(text, body))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
