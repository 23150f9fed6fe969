"""Bad input on every route of every service: no 500, no traceback, no HTML from our code.

Hypothesis writes raw HTTP requests (methods, paths, query strings, headers including huge and
malformed X-Request-IDs, bodies) and sends them to real gunicorn processes on 127.0.0.1.
gunicorn itself rejects some of them (bad request line, header too large) with its own small
HTML page and a 4xx (or 501 for an unknown transfer coding): allowed, as long as it is not a
500 and carries no traceback. Everything our application answers must be JSON (or hello's text).
"""

from __future__ import annotations

import json
import re
import string
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .rawhttp import Reply, exchange

ROUTES = ["/", "/healthz", "/readyz", "/metrics"]
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
GUNICORN_PAGE = re.compile(rb"^<html>\s*<head>\s*<title>[^<]*</title>")
# gunicorn's own rejections, before our code runs: bad request 400, forbidden 403,
# URI too long 414, expectation failed 417, headers too large 431, unknown coding 501.
GUNICORN_STATUSES = {400, 403, 414, 417, 431, 501}

token = st.text(alphabet=string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~", min_size=1)
anything = st.text(max_size=40)  # any unicode, control characters included
visible = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
standard_methods = st.sampled_from(
    ["GET", "GET", "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"]
)
unknown_methods = st.text(alphabet=string.ascii_uppercase, min_size=3, max_size=12)
odd_methods = st.one_of(
    st.sampled_from(["CONNECT", "PROPFIND", "get", "G\x00T", "", "GE"]), token.map(lambda t: t[:20])
)
# Well-formed HTTP with odd content: what reaches our Flask code.
quoted_segments = st.lists(anything.map(lambda text: quote(text, safe="")), max_size=4)
quoted_paths = st.one_of(
    st.sampled_from(ROUTES),  # the real routes, three times as likely as the rest
    st.sampled_from(ROUTES),
    st.sampled_from(ROUTES),
    st.sampled_from(ROUTES).map(lambda route: route + "/"),
    st.tuples(st.sampled_from(ROUTES), quoted_segments).map(lambda p: p[0] + "/".join(p[1])),
    st.sampled_from(["//", "/./", "/../healthz", "/%2e%2e/", "/%00", "/%ff", "/%zz", "/.."]),
    st.integers(1, 4000).map(lambda n: "/" + "a" * n),
)
quoted_queries = st.one_of(
    st.just(""),
    st.dictionaries(anything, anything, max_size=4).map(lambda d: "?" + urlencode(d)),
    st.sampled_from(["?", "?&&&", "?a=%", "?a=%zz", "?data=1&data=2", "?%00=%00", "?a=%ff"]),
    st.integers(1, 4000).map(lambda n: "?q=" + "x" * n),
)
good_request_ids = st.text(
    alphabet=string.ascii_letters + string.digits + "._:-", min_size=1, max_size=128
)
request_ids = st.one_of(
    good_request_ids,
    st.integers(129, 8000).map(lambda n: "r" * n),  # too long to keep, short enough for gunicorn
    visible,  # spaces, quotes, angle brackets, percent signs...
    st.sampled_from(["", " ", "../../etc/passwd", "<script>x</script>", "a\tb", "%0d%0a"]),
)
odd_headers = st.lists(
    st.one_of(
        st.tuples(token.map(lambda t: t[:40]), visible),
        st.tuples(
            st.sampled_from(["Accept", "Content-Type", "Accept-Encoding", "Cookie"]), visible
        ),
        st.tuples(st.just("X-Request-ID"), request_ids),  # a second id
        st.tuples(st.sampled_from(["X-Forwarded-For", "Forwarded", "X-Real-IP"]), visible),
    ),
    max_size=4,
)
# Broken HTTP: for gunicorn's parser (it must answer 4xx, not crash or hang).
raw_paths = st.one_of(
    st.lists(anything, max_size=4).map(lambda parts: "/" + "/".join(parts)),
    st.sampled_from(["*", "http://127.0.0.1/", "/#frag", "", "/a b", "/\u00e9"]),
    st.integers(4000, 9000).map(lambda n: "/" + "a" * n),
)
broken_headers = st.lists(
    st.one_of(
        st.tuples(token.map(lambda t: t[:40]), anything),
        st.tuples(st.just("X-Request-ID"), anything),
        st.tuples(st.just("X-Request-ID"), st.just("r" * 9000)),  # over the 8190-byte limit
        st.tuples(
            st.just("Content-Length"), st.sampled_from(["abc", "-1", "1e3", "99999999999999999999"])
        ),
        st.tuples(st.just("Transfer-Encoding"), st.sampled_from(["chunked", "gzip", "x, chunked"])),
        st.tuples(st.sampled_from(["Host", "Expect", "Bad Name", "Bad:Name", ""]), anything),
    ),
    min_size=1,
    max_size=4,
)


@st.composite
def requests(draw: st.DrawFn, broken: bool) -> tuple[bytes, str | None]:
    method = draw(odd_methods if broken else st.one_of(standard_methods, unknown_methods))
    target = draw(raw_paths if broken else quoted_paths) + draw(quoted_queries)
    request_id = draw(st.none() | request_ids)
    headers = [("Host", "127.0.0.1")]
    if request_id is not None:
        headers.append(("X-Request-ID", request_id))
    headers += draw(broken_headers if broken else odd_headers)
    body = draw(st.binary(max_size=200)) if method not in ("GET", "HEAD") else b""
    if body and not any(name.lower() == "content-length" for name, _ in headers):
        headers.append(("Content-Length", str(len(body))))
    headers.append(("Connection", "close"))
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers)
    return head.encode("utf-8", "surrogateescape") + b"\r\n" + body, request_id


def judge(reply: Reply, request_id: str | None, sent: bytes) -> None:
    shown = f"request {sent[:300]!r}...\nreply {reply.raw[:500]!r}"
    assert b"Traceback" not in reply.raw, shown
    if reply.status is None:
        # Only an unreadable request may be dropped without an answer.
        assert not sent.startswith((b"GET / HTTP/1.1\r\n", b"GET /healthz HTTP/1.1\r\n")), shown
        return
    assert reply.status != 500, shown
    if GUNICORN_PAGE.match(reply.body):
        assert reply.status in GUNICORN_STATUSES, shown
        return
    assert reply.status < 500 or reply.status in (502, 503), shown
    content_type = reply.header("Content-Type")
    if reply.status >= 400 and not sent.startswith(b"HEAD "):
        assert content_type.startswith("application/json"), shown
        assert json.loads(reply.body)["error"], shown
    assert b"<html" not in reply.body.lower(), shown
    echoed = reply.header("X-Request-ID")
    assert not echoed or SAFE_REQUEST_ID.fullmatch(echoed), shown
    if request_id and SAFE_REQUEST_ID.fullmatch(request_id) and sent.count(b"X-Request-ID") == 1:
        assert echoed == request_id, shown


@pytest.mark.parametrize(
    ("name", "broken", "examples"),
    [
        (name, broken, examples)
        for name in ("hello", "persistence", "hash")
        for broken, examples in ((False, 200), (True, 60))
    ],
    ids=lambda value: {False: "http", True: "broken-http"}.get(value, str(value)),
)
def test_bad_requests_get_clean_answers(services, name: str, broken: bool, examples: int) -> None:
    service = services[name]

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,  # the same examples on every run: CI stays stable
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(requests(broken))
    def fuzz(case: tuple[bytes, str | None]) -> None:
        sent, request_id = case
        judge(exchange(service.port, sent), request_id, sent)

    fuzz()
    log = service.log_text()
    assert "Traceback" not in log, log[-3000:]
    assert "unhandled error" not in log, log[-3000:]
