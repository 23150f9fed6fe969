"""The small part of PromQL the Grafana dashboard uses, evaluated over scrapes we took ourselves.

Grafana and Prometheus cannot run here, so ci/dashboard_png.py plots the dashboard's own
queries with this evaluator, and tests/chart/test_dashboard.py uses its parser to check that
every query names a metric the services export. Grammar (nothing else is accepted):

    expr     := quantile | sum | rate
    quantile := histogram_quantile(NUMBER, expr)
    sum      := sum [by (label, ...)] (expr)
    rate     := rate(metric[{label op "value", ...}] [WINDOW])     op: = != =~ !~
"""

from __future__ import annotations

import itertools
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field

Labels = frozenset[tuple[str, str]]
Vector = dict[Labels, float]

_TOKEN = re.compile(
    r'\s*(?:(?P<number>\d+(?:\.\d+)?)|(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)|(?P<string>"[^"]*")'
    r"|(?P<window>\[[^\]]+\])|(?P<op>=~|!~|!=|=|[(),{}]))"
)


class QueryError(ValueError):
    """A query outside the subset above."""


@dataclass(frozen=True)
class Rate:
    metric: str
    matchers: tuple[tuple[str, str, str], ...]
    window: str


@dataclass(frozen=True)
class Sum:
    by: tuple[str, ...]
    inner: Node


@dataclass(frozen=True)
class Quantile:
    q: float
    inner: Node


Node = Rate | Sum | Quantile


@dataclass
class _Parser:
    tokens: list[tuple[str, str]]
    pos: int = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("end", "")

    def take(self, kind: str, value: str | None = None) -> str:
        got_kind, got = self.peek()
        if got_kind != kind or (value is not None and got != value):
            raise QueryError(f"expected {value or kind}, found {got or 'the end'!r}")
        self.pos += 1
        return got

    def expr(self) -> Node:
        name = self.take("name")
        if name == "histogram_quantile":
            self.take("op", "(")
            q = float(self.take("number"))
            self.take("op", ",")
            inner = self.expr()
            self.take("op", ")")
            return Quantile(q, inner)
        if name == "sum":
            by: tuple[str, ...] = ()
            if self.peek() == ("name", "by"):
                self.take("name")
                by = self.label_list()
            self.take("op", "(")
            inner = self.expr()
            self.take("op", ")")
            return Sum(by, inner)
        if name == "rate":
            self.take("op", "(")
            metric = self.take("name")
            matchers = self.matchers() if self.peek() == ("op", "{") else ()
            window = self.take("window")[1:-1]
            self.take("op", ")")
            return Rate(metric, matchers, window)
        raise QueryError(f"unsupported function {name!r}")

    def label_list(self) -> tuple[str, ...]:
        self.take("op", "(")
        names = [self.take("name")]
        while self.peek() == ("op", ","):
            self.take("op")
            names.append(self.take("name"))
        self.take("op", ")")
        return tuple(names)

    def matchers(self) -> tuple[tuple[str, str, str], ...]:
        self.take("op", "{")
        found = []
        while True:
            label = self.take("name")
            op = self.take("op")
            if op not in ("=", "!=", "=~", "!~"):
                raise QueryError(f"bad matcher operator {op!r}")
            found.append((label, op, self.take("string")[1:-1]))
            if self.peek() == ("op", "}"):
                self.take("op")
                return tuple(found)
            self.take("op", ",")


def parse(query: str) -> Node:
    text = query.strip()
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise QueryError(f"cannot read {text[pos : pos + 20]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    parser = _Parser(tokens)
    node = parser.expr()
    if parser.pos != len(tokens):
        raise QueryError(f"unexpected {tokens[parser.pos][1]!r} after the query")
    return node


def rates(node: Node) -> list[Rate]:
    """The rate() selectors of a query: which metrics and labels it reads."""
    if isinstance(node, Rate):
        return [node]
    return rates(node.inner)


def seconds(window: str) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|m|h)", window)
    if not match:
        raise QueryError(f"window {window!r}: expected e.g. 30s or 1m")
    return int(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match.group(2)]


@dataclass
class Scrapes:
    """Counter samples over time: series (metric name plus labels) -> [(time, value)]."""

    series: dict[str, dict[Labels, list[tuple[float, float]]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )

    def add(self, when: float, metric: str, labels: dict[str, str], value: float) -> None:
        self.series[metric][frozenset(labels.items())].append((when, value))

    def evaluate(self, query: str | Node, at: float, windows: dict[str, str]) -> Vector:
        """The query's value at time `at`; `windows` replaces Grafana variables in windows."""
        node = parse(query) if isinstance(query, str) else query
        return self._eval(node, at, windows)

    def _eval(self, node: Node, at: float, windows: dict[str, str]) -> Vector:
        if isinstance(node, Rate):
            return self._rate(node, at, seconds(windows.get(node.window, node.window)))
        inner = self._eval(node.inner, at, windows)
        if isinstance(node, Sum):
            out: Vector = defaultdict(float)
            for labels, value in inner.items():
                out[frozenset((k, v) for k, v in labels if k in node.by)] += value
            return dict(out)
        return _quantile(node.q, inner)

    def _rate(self, node: Rate, at: float, window: float) -> Vector:
        out: Vector = {}
        for labels, points in self.series.get(node.metric, {}).items():
            if not _matches(dict(labels), node.matchers):
                continue
            inside = [(t, v) for t, v in points if at - window <= t <= at]
            if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
                continue
            increase = 0.0
            for (_, before), (_, after) in itertools.pairwise(inside):
                increase += after - before if after >= before else after  # counter reset
            out[labels] = increase / (inside[-1][0] - inside[0][0])
        return out


def _matches(labels: dict[str, str], matchers: tuple[tuple[str, str, str], ...]) -> bool:
    for label, op, wanted in matchers:
        value = labels.get(label, "")
        ok = {
            "=": value == wanted,
            "!=": value != wanted,
            "=~": re.fullmatch(wanted, value) is not None,
            "!~": re.fullmatch(wanted, value) is None,
        }[op]
        if not ok:
            return False
    return True


def _quantile(q: float, buckets: Vector) -> Vector:
    """histogram_quantile as Prometheus computes it: linear within the bucket holding the rank."""
    groups: dict[Labels, list[tuple[float, float]]] = defaultdict(list)
    for labels, value in buckets.items():
        le = dict(labels).get("le")
        if le is None:
            continue
        groups[frozenset((k, v) for k, v in labels if k != "le")].append((float(le), value))
    out: Vector = {}
    for labels, points in groups.items():
        points.sort()
        total = points[-1][1]
        if not math.isinf(points[-1][0]) or total <= 0:
            continue
        rank = q * total
        lower_bound, lower_count = 0.0, 0.0
        for upper_bound, count in points:
            if count >= rank:
                if math.isinf(upper_bound):
                    out[labels] = lower_bound
                elif count == lower_count:
                    out[labels] = upper_bound
                else:
                    share = (rank - lower_count) / (count - lower_count)
                    out[labels] = lower_bound + (upper_bound - lower_bound) * share
                break
            lower_bound, lower_count = upper_bound, count
    return out
