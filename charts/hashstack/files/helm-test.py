"""`helm test` checks, run by the test pods with the service image's own Python.

Usage: python -c "<this file>" CHECK URL TIMEOUT_SECONDS, CHECK one of:
  sha256  GET URL returns {"data": {"number": N, "hash": sha256(str(N))}}
  unique  two GETs of URL return two different numbers
  hello   GET URL returns the text "Hello, World!"
Only the standard library: the images carry nothing else we can count on.
"""

import hashlib
import json
import sys
import time
import urllib.error
import urllib.request


def get(url: str, deadline: float) -> bytes:
    """GET url, retrying while the service is still starting (until the deadline)."""
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
                return response.read()
        except (urllib.error.URLError, OSError) as error:
            if time.monotonic() > deadline:
                raise SystemExit(f"FAIL GET {url}: {error}") from None
            print(f"waiting for {url}: {error}", flush=True)
            time.sleep(2)


def number_of(url: str, deadline: float) -> int:
    body = json.loads(get(url, deadline))
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise SystemExit(f"FAIL {url}: no data object in {body!r}")
    number, digest = data.get("number"), data.get("hash")
    if not isinstance(number, int) or isinstance(number, bool):
        raise SystemExit(f"FAIL {url}: number is not an integer: {number!r}")
    want = hashlib.sha256(str(number).encode()).hexdigest()
    if digest != want:
        raise SystemExit(f"FAIL {url}: hash of {number} is {digest!r}, want {want}")
    return number


def main(check: str, url: str, timeout: str) -> None:
    deadline = time.monotonic() + float(timeout)
    if check == "sha256":
        number = number_of(url, deadline)
        print(f"ok: {url} gave {number} with its sha256")
    elif check == "unique":
        first, second = number_of(url, deadline), number_of(url, deadline)
        if first == second:
            raise SystemExit(f"FAIL {url}: two calls gave the same number {first}")
        print(f"ok: {url} gave {first} then {second}")
    elif check == "hello":
        text = get(url, deadline).decode().strip()
        if text != "Hello, World!":
            raise SystemExit(f"FAIL {url}: said {text!r}")
        print(f"ok: {url} said {text}")
    else:
        raise SystemExit(f"unknown check {check!r}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
