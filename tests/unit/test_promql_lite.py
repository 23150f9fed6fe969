"""ci/promql_lite.py, which plots the dashboard's queries: the numbers Prometheus would give."""

from __future__ import annotations

import math

import pytest
from promql_lite import QueryError, Scrapes, parse, rates


def _counter_scrapes() -> Scrapes:
    scrapes = Scrapes()
    for t in range(11):
        scrapes.add(t, "req_total", {"service": "hash", "status": "200"}, 10.0 * t)
        scrapes.add(t, "req_total", {"service": "hash", "status": "503"}, 2.0 * t)
        scrapes.add(t, "req_total", {"service": "hello", "status": "200"}, 5.0 * t)
    return scrapes


def test_rate_and_sum_by() -> None:
    scrapes = _counter_scrapes()
    by_service = scrapes.evaluate("sum by (service) (rate(req_total[5s]))", 10, {})
    assert by_service == {
        frozenset({("service", "hash")}): pytest.approx(12.0),
        frozenset({("service", "hello")}): pytest.approx(5.0),
    }
    errors = scrapes.evaluate('sum(rate(req_total{status=~"5.."}[$w]))', 10, {"$w": "5s"})
    assert errors == {frozenset(): pytest.approx(2.0)}


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    scrapes = Scrapes()
    # Per second: 50 observations <= 0.1, 40 more <= 0.5, 10 more above.
    for t in (0, 10):
        for le, per_second in (("0.1", 50), ("0.5", 90), ("+Inf", 100)):
            scrapes.add(t, "lat_bucket", {"le": le}, per_second * t)
    query = "histogram_quantile({q}, sum by (le) (rate(lat_bucket[30s])))"
    p50 = scrapes.evaluate(query.format(q=0.5), 10, {})[frozenset()]
    p80 = scrapes.evaluate(query.format(q=0.8), 10, {})[frozenset()]
    p99 = scrapes.evaluate(query.format(q=0.99), 10, {})[frozenset()]
    assert p50 == pytest.approx(0.1)
    assert p80 == pytest.approx(0.1 + 0.4 * (80 - 50) / 40)
    assert p99 == pytest.approx(0.5)  # in the +Inf bucket: the highest finite bound
    assert not math.isnan(p99)


def test_parse_names_the_selectors_and_refuses_the_rest() -> None:
    node = parse('histogram_quantile(0.99, sum by (le) (rate(x_bucket{outcome="ok"}[1m])))')
    (selector,) = rates(node)
    assert (selector.metric, selector.matchers, selector.window) == (
        "x_bucket",
        (("outcome", "=", "ok"),),
        "1m",
    )
    for bad in ("avg(rate(x[1m]))", "rate(x)", "sum(rate(x[1m])) + 1", 'rate(x{a~"b"}[1m])'):
        with pytest.raises(QueryError):
            parse(bad)
