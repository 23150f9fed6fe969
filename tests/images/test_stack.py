"""The services as containers on a podman network of their own, reaching each other by name.

Topology (aliases in brackets):
    etcd [etcd]
    persistence-1 [persistence, persistence-1]      persistence-2 [persistence, persistence-2]
    hash-1 -> persistence-1    hash-2 -> persistence-2    hash-lb -> persistence (both, by DNS)
hash-1 and hash-2 pin one replica each, so both replicas hand out numbers from the one etcd
counter at the same time; hash-lb goes through the shared alias the way a Service would. The
kill test stops the replica hash-lb is using: the hash pinned to it must answer JSON errors only
until it is back, the other pinned hash must not notice, hash-lb must carry on through the
survivor, and no number may ever come twice.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
import requests

from tests.support import podman as pm
from tests.support.measurements import record
from tests.support.numbers import find_duplicates

HASHES = ("hash-1", "hash-2", "hash-lb")


@dataclass
class Stack:
    network: str
    names: dict[str, str]  # role -> container name
    urls: dict[str, str]  # hash role -> published URL
    numbers: set[int] = field(default_factory=set)  # every number seen in this module


@pytest.fixture(scope="module")
def stack(images: dict[str, str], test_images: dict[str, str]) -> Iterator[Stack]:
    network = pm.unique("hashstack-test-stack")
    pm.podman("network", "create", network)
    names = {role: pm.unique(f"hashstack-test-{role}") for role in
             ("etcd", "persistence-1", "persistence-2", *HASHES)}  # fmt: skip
    try:
        pm.run_container(
            test_images["etcd"], names["etcd"], network=network, aliases=["etcd"], publish=False,
            environment={"ETCD_ADVERTISE_CLIENT_URLS": "http://etcd:2379"},
            read_only=False,  # its data directory is in the image, owned by its user
        )  # fmt: skip
        for replica in ("persistence-1", "persistence-2"):
            pm.run_container(
                images["persistence"], names[replica], network=network,
                aliases=["persistence", replica], publish=False,
                environment={
                    "ETCD_ENDPOINTS": "http://etcd:2379",
                    "COUNTER_KEY": "/hashstack-test/counter",
                    # Small blocks: many trips to etcd, so the replicas really interleave.
                    "BLOCK_SIZE": "10",
                    "WEB_CONCURRENCY": "2",
                },
            )  # fmt: skip
        upstream = {"hash-1": "persistence-1", "hash-2": "persistence-2", "hash-lb": "persistence"}
        for role in HASHES:
            pm.run_container(
                images["hash"], names[role], network=network,
                environment={
                    "PERSISTENCE_URL": f"http://{upstream[role]}:8080",
                    "REQUEST_TIMEOUT": "1",
                    "WEB_CONCURRENCY": "2",
                },
            )  # fmt: skip
        urls = {role: pm.published_url(names[role]) for role in HASHES}
        # A number through each hash: hash -> persistence -> etcd, all by name on the network.
        for role in HASHES:
            pm.wait_http(f"{urls[role]}/", names[role], timeout=60)
        yield Stack(network, names, urls)
    finally:
        pm.remove_containers(*names.values())
        pm.podman("network", "rm", "--force", network, check=False)


@dataclass
class Answer:
    role: str
    status: int
    number: int | None
    error: str | None
    at: float


def ask(session: requests.Session, url: str, role: str) -> Answer:
    """One request through hash; anything but a well-formed answer fails the test."""
    response = session.get(url, timeout=10)
    at = time.monotonic()
    assert response.headers.get("Content-Type", "").startswith("application/json"), (
        f"{role}: HTTP {response.status_code} is not JSON: {response.text[:200]!r}"
    )
    body = response.json()
    if response.status_code == 200:
        number = body["data"]["number"]
        assert isinstance(number, int)
        assert body["data"]["hash"] == hashlib.sha256(str(number).encode()).hexdigest()
        return Answer(role, 200, number, None, at)
    assert response.status_code in (502, 503), f"{role}: unexpected {response.status_code} {body}"
    assert isinstance(body.get("error"), str), body
    assert body["error"], body
    return Answer(role, response.status_code, None, body["error"], at)


def distinct(numbers: list[int]) -> None:
    twice = find_duplicates(numbers)
    assert not twice, f"{len(twice)} numbers handed out more than once: {sorted(twice)[:10]}"


def test_hash_answers_with_correct_sha256(stack: Stack) -> None:
    for role in HASHES:
        answer = ask(requests.Session(), stack.urls[role] + "/", role)
        assert answer.status == 200
        assert answer.number is not None
        stack.numbers.add(answer.number)


def test_thousand_requests_give_thousand_distinct_numbers(stack: Stack) -> None:
    local = threading.local()

    def one(i: int) -> Answer:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        role = HASHES[i % len(HASHES)]
        return ask(local.session, stack.urls[role] + "/", role)

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(one, range(1000)))
    record("1000 requests through hash, 8 clients (s)", round(time.monotonic() - start, 2))
    assert all(answer.status == 200 for answer in answers)
    numbers = [answer.number for answer in answers if answer.number is not None]
    assert len(numbers) == 1000
    distinct(numbers)
    assert not stack.numbers & set(numbers)
    stack.numbers.update(numbers)
    # Both replicas handed out numbers concurrently (hash-1 and hash-2 each pin one).
    served = {replica: served_by(stack, replica) for replica in ("persistence-1", "persistence-2")}
    record("numbers served per persistence replica (all tests so far)", served)
    assert all(count > 300 for count in served.values()), served


def served_by(stack: Stack, replica: str) -> int:
    log = pm.podman("logs", stack.names[replica]).stdout
    return log.count('"msg": "GET / 200"')


def slow_requests(stack: Stack) -> dict[str, list[str]]:
    """Each hash's log lines about requests that took over a second: where a hang was spent."""
    slow: dict[str, list[str]] = {}
    for role in HASHES:
        lines = pm.podman("logs", stack.names[role]).stdout.splitlines()
        slow[role] = [
            line
            for line in lines
            if '"duration_ms": ' in line
            and float(line.split('"duration_ms": ')[1].split(",")[0]) > 1000
        ][-5:]
    return slow


def replica_behind_lb(stack: Stack) -> str:
    """The replica hash-lb's pooled connections reach (DNS order decides; measured, not assumed)."""
    before = {r: served_by(stack, r) for r in ("persistence-1", "persistence-2")}
    session = requests.Session()
    for _ in range(30):
        answer = ask(session, stack.urls["hash-lb"] + "/", "hash-lb")
        assert answer.number is not None
        stack.numbers.add(answer.number)
    delta = {r: served_by(stack, r) - before[r] for r in before}
    return max(delta, key=lambda replica: delta[replica])


def test_killing_one_persistence_replica(stack: Stack) -> None:
    # Kill the replica hash-lb is using, so the shared alias has to fail over for real.
    victim = replica_behind_lb(stack)
    survivor = "persistence-2" if victim == "persistence-1" else "persistence-1"
    cut_off = "hash-" + victim[-1]  # the hash pinned to the victim
    untouched = "hash-" + survivor[-1]
    answers: list[Answer] = []
    lock = threading.Lock()
    stop = threading.Event()
    failures: list[BaseException] = []

    def load(role: str) -> None:
        session = requests.Session()
        try:
            while not stop.is_set():
                answer = ask(session, stack.urls[role] + "/", role)
                with lock:
                    answers.append(answer)
        except BaseException as error:  # surfaced below, with the role and the time
            at = time.monotonic() - began
            failures.append(AssertionError(f"{role} at +{at:.1f}s: {error!r}"))

    threads = [threading.Thread(target=load, args=(role,)) for role in HASHES for _ in (1, 2)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.5)
        killed_at = time.monotonic()
        pm.podman("kill", "--signal", "KILL", stack.names[victim])
        time.sleep(4)
        restarted_at = time.monotonic()
        pm.podman("start", stack.names[victim])
        print(f"killed at +{killed_at - began:.1f}s, restarted at +{restarted_at - began:.1f}s")
        # Run on until the cut-off hash has its upstream back (a new block from etcd) a while.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not failures:
            with lock:
                back = [a for a in answers if a.role == cut_off and a.at > restarted_at]
            if sum(a.status == 200 for a in back) >= 50:
                break
            time.sleep(0.2)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert not failures, (failures, slow_requests(stack))

    numbers = [a.number for a in answers if a.number is not None]
    distinct(numbers)
    assert not stack.numbers & set(numbers), "a number from before the kill came back"
    stack.numbers.update(numbers)

    def of(role: str, since: float, until: float = float("inf")) -> list[Answer]:
        return [a for a in answers if a.role == role and since <= a.at < until]

    # The hash pinned to the victim lost its only upstream: JSON errors (checked in ask) while
    # it was gone ...
    down = of(cut_off, killed_at + 1.5, restarted_at)
    assert down, (f"no request reached {cut_off} while {victim} was down", slow_requests(stack))
    assert all(a.status in (502, 503) for a in down), [a.status for a in down]
    # ... and numbers again once it was back.
    assert sum(a.status == 200 for a in of(cut_off, restarted_at)) >= 50
    # The other pinned hash never depended on the victim.
    unexpected = [(round(a.at - killed_at, 2), a.status, a.error) for a in of(untouched, 0)]
    assert all(a.status == 200 for a in of(untouched, 0)), [u for u in unexpected if u[1] != 200]
    # The shared alias carried hash-lb over to the survivor while the victim was down.
    assert sum(a.status == 200 for a in of("hash-lb", killed_at + 1.5, restarted_at)) > 0

    errors = [a for a in answers if a.status != 200]
    record(
        f"kill {victim} (behind hash-lb) under load",
        f"{len(answers)} answers, {len(numbers)} distinct numbers, {len(errors)} JSON errors "
        f"({cut_off} {sum(a.role == cut_off for a in errors)}, "
        f"hash-lb {sum(a.role == 'hash-lb' for a in errors)}), no duplicates",
    )
