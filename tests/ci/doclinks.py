"""What the docs link to and name: relative links and anchors (GitHub's rules), `make` targets
and ci/ scripts. Pure functions over Markdown text, used by test_docs_links.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_TARGET = re.compile(r"<(?:img|a)\b[^>]*?\b(?:src|href)=\"([^\"]+)\"")
HTML_ANCHOR = re.compile(r"<a\b[^>]*?\b(?:name|id)=\"([^\"]+)\"")
MAKE = re.compile(r"(?<![\w./-])make((?:\s+[^\s;&|`)]+)*)")
CI_SCRIPT = re.compile(r"(?<![\w./-])(ci/[\w./-]+\.(?:sh|py))\b")


@dataclass(frozen=True)
class Text:
    """A page split into prose (code spans blanked) and code (fenced lines and spans)."""

    prose: list[str]
    code: list[str]


def split(markdown: str) -> Text:
    prose: list[str] = []
    code: list[str] = []
    fenced = False
    for line in markdown.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            code.append(line)
            prose.append("")
            continue
        code.extend(match.group(2) for match in INLINE_CODE.finditer(line))
        prose.append(INLINE_CODE.sub(lambda m: f"\0{m.group(2)}\0", line))
    return Text(prose, code)


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: formatting dropped, lower case, punctuation other than
    '-' and '_' removed, each space a '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links: their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML tags
    text = text.replace("`", "").replace("*", "").strip().lower()
    text = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every anchor a page offers: its headings (with GitHub's -1, -2 for repeats) and any
    <a name/id>."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in split(markdown).prose:
        heading = HEADING.match(line.replace("\0", "`"))
        if heading:
            slug = github_anchor(heading.group(2))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found.add(slug if count == 0 else f"{slug}-{count}")
        found.update(HTML_ANCHOR.findall(line))
    return found


def links(markdown: str) -> Iterator[str]:
    """Link and image targets outside code."""
    for line in split(markdown).prose:
        plain = re.sub(r"\0[^\0]*\0", "", line)
        yield from LINK.findall(plain)
        yield from HTML_TARGET.findall(plain)


def is_external(target: str) -> bool:
    return bool(re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", target)) or target.startswith("//")


def broken_links(page: Path) -> list[str]:
    """Each relative link of the page whose file or anchor does not exist, as 'target: why'."""
    problems = []
    for target in links(page.read_text()):
        if is_external(target):
            continue
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if not resolved.exists():
            problems.append(f"{target}: no such file")
            continue
        if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved.read_text()):
            problems.append(f"{target}: no heading with the anchor #{anchor}")
    return problems


def make_targets_named(markdown: str) -> set[str]:
    """Targets of `make ...` commands in the page's code (inline spans and fenced blocks)."""
    targets = set()
    for code in split(markdown).code:
        for match in MAKE.finditer(code):
            for word in match.group(1).split():
                if "=" in word or word.startswith("-"):
                    continue  # VAR=value and options come before or after the target
                if re.fullmatch(r"[a-z][\w-]*", word):
                    targets.add(word)
                break
    return targets


def ci_scripts_named(markdown: str) -> set[str]:
    return set(CI_SCRIPT.findall(markdown))


def makefile_targets(makefile: Path) -> set[str]:
    return set(re.findall(r"^([a-z][\w-]*):", makefile.read_text(), re.MULTILINE))
