"""What was injected when, what the callers saw in each window, and the verdict on it."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from .load import Load

ALLOWED = ("ok", "json 502", "json 503")
REQUEST_TIMEOUT = 1.0  # the services' deadline for each call to their dependency
# No request may take longer: hash waits REQUEST_TIMEOUT for persistence and may retry a
# refused connection once (2 s), plus 1.5 s of headroom for a loaded 2-core machine.
BOUND = 2 * REQUEST_TIMEOUT + 1.5
RECOVERY = 5.0  # seconds from a dependency's return to good answers again
STAY = 2.0  # the shortest watch after RECOVERY in which every answer must be good


@dataclass
class Injection:
    name: str
    started: float
    back: float | None = None  # when what was broken answered again (None: nothing went away)
    ended: float = 0.0

    def mark_back(self) -> None:
        self.back = time.monotonic()


@dataclass
class Timeline:
    load: Load
    bound: float  # no request may take longer than this (seconds)
    injections: list[Injection] = field(default_factory=list)

    @contextmanager
    def inject(self, name: str, observe: float) -> Iterator[Injection]:
        """Run the fault in the with-block, then watch the load for `observe` seconds."""
        injection = Injection(name, time.monotonic())
        self.injections.append(injection)
        yield injection
        time.sleep(observe)
        injection.ended = time.monotonic()

    def rows(self) -> list[dict[str, str]]:
        rows = []
        for injection in self.injections:
            answers = self.load.between(injection.started, injection.ended)
            kinds = Counter(a.kind for a in answers)
            bad = sum(n for kind, n in kinds.items() if kind not in ALLOWED)
            recovered = self._recovery(injection)
            rows.append(
                {
                    "injected": injection.name,
                    "answers": str(len(answers)),
                    "ok": str(kinds["ok"]),
                    "json 503": str(kinds["json 503"]),
                    "json 502": str(kinds["json 502"]),
                    "bad": str(bad),
                    "slowest": f"{max((a.elapsed for a in answers), default=0):.2f}s",
                    "ok again after": "-" if recovered is None else f"{recovered:.2f}s",
                }
            )
        return rows

    def _recovery(self, injection: Injection) -> float | None:
        since = injection.back if injection.back is not None else injection.started
        return self.load.first_ok_after(since)

    def table(self) -> str:
        rows = self.rows()
        if not rows:
            return "(nothing injected)"
        columns = list(rows[0])
        widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
        lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
        lines.append("  ".join("-" * widths[c] for c in columns))
        lines += ["  ".join(r[c].ljust(widths[c]) for c in columns) for r in rows]
        duplicates = self.load.duplicates()
        good = sum(1 for a in self.load.answers if a.number)
        lines.append(
            f"whole run: {len(self.load.answers)} answers, {good} numbers, "
            f"{len(duplicates)} duplicates"
        )
        return "\n".join(lines)

    def problems(self) -> list[str]:
        found = []
        for answer in self.load.answers:
            if answer.kind not in ALLOWED:
                found.append(f"{answer.kind}: {answer.body[:200]!r}")
            if answer.elapsed > self.bound:
                found.append(f"a request took {answer.elapsed:.2f}s (bound {self.bound:.1f}s)")
        for injection in self.injections:
            recovered = self._recovery(injection)
            if recovered is None or recovered > RECOVERY:
                found.append(f"{injection.name}: no good answer within {RECOVERY:.0f}s")
            # Once recovered, it stays recovered: every answer later in the window is good.
            # Only answers that came back before the window ended count: a request still in
            # flight then met the next fault (the next window holds its start, not its cause).
            since = injection.back if injection.back is not None else injection.started
            later = [
                a
                for a in self.load.between(since + RECOVERY, injection.ended)
                if a.started + a.elapsed <= injection.ended
            ]
            if not later:
                found.append(
                    f"{injection.name}: no answer came back between {RECOVERY:.0f}s after the "
                    "fault and the end of the watch: the stays-recovered check saw nothing"
                )
            failing = [a.kind for a in later if a.kind != "ok"]
            if failing:
                found.append(
                    f"{injection.name}: {len(failing)} failures more than {RECOVERY:.0f}s "
                    f"after the fault ended ({Counter(failing).most_common(3)})"
                )
        duplicates = self.load.duplicates()
        if duplicates:
            found.append(f"{len(duplicates)} numbers handed out twice, e.g. {duplicates[:10]}")
        unique = list(dict.fromkeys(found))
        return unique[:20] + ([f"... and {len(unique) - 20} more"] if len(unique) > 20 else [])
