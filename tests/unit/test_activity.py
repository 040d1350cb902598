"""The console's in-process activity: a bounded ring of audit events and per-minute buckets."""

from __future__ import annotations

from dataclasses import dataclass

from ostiary.server.activity import DAY_MINUTES, Activity, series_name
from ostiary.server.metrics import HEADLINE_EVENTS


@dataclass
class Clock:
    now: int = 1_900_000_020

    def __call__(self) -> int:
        return self.now


def test_series_names_mirror_the_metrics_counters() -> None:
    assert series_name("token.issued") == "tokens:issued"
    assert series_name("login.second_factor_failed") == "logins:failed"
    assert series_name("authorization_code.replayed") == "reuse"
    assert series_name("csrf.rejected") is None
    assert {series_name(e) for e in HEADLINE_EVENTS} >= {
        "tokens:issued", "tokens:refreshed", "logins:succeeded", "logins:failed", "reuse",
    }  # fmt: skip


def test_ring_keeps_the_newest_events_and_filters() -> None:
    activity = Activity(Clock(), ring_size=3)
    for n in range(5):
        activity.audit_sink("token.issued", {"event": "token.issued", "subject": f"u{n}"})
    assert [r["subject"] for r in activity.recent()] == ["u4", "u3", "u2"]
    activity.audit_sink("login.failed", {"event": "login.failed", "username": "ada"})
    activity.audit_sink("admin.user_disabled", {"event": "admin.user_disabled", "client_id": "c"})
    assert [r["event"] for r in activity.recent(event="login.failed")] == ["login.failed"]
    assert [r["event"] for r in activity.recent(event="admin.")] == ["admin.user_disabled"]
    assert [r["event"] for r in activity.recent(subjects=("ada",))] == ["login.failed"]
    assert [r["event"] for r in activity.recent(client_id="c")] == ["admin.user_disabled"]
    assert activity.event_names() == ["admin.user_disabled", "login.failed", "token.issued"]


def test_buckets_per_minute_and_per_quarter_hour_and_expiry_after_a_day() -> None:
    clock = Clock()
    activity = Activity(clock)
    activity.audit_sink("token.issued", {})
    clock.now += 60
    activity.audit_sink("token.issued", {})
    activity.audit_sink("token.refreshed", {})
    activity.answered("/token", 400)
    activity.answered("/token", 200)
    hour = activity.series("hour")
    assert hour["end"] == (clock.now // 60 + 1) * 60
    assert hour["series"]["tokens:issued"][-2:] == [1, 1]
    assert hour["series"]["tokens:refreshed"][-1] == 1
    assert hour["errors"] == {"/token": [0] * 59 + [1]}
    day = activity.series("day")
    assert sum(day["series"]["tokens:issued"]) == 2
    assert len(day["series"]["tokens:issued"]) == 96

    clock.now += DAY_MINUTES * 60
    activity.audit_sink("login.failed", {})  # a new bucket: those older than a day go
    assert sum(activity.series("day")["series"]["tokens:issued"]) == 0
    assert activity.series("hour")["series"]["logins:failed"][-1] == 1


def test_errors_beyond_the_busiest_routes_are_summed() -> None:
    activity = Activity(Clock())
    for n in range(8):
        for _ in range(n + 1):
            activity.answered(f"/r{n}", 500)
    errors = activity.series("hour")["errors"]
    assert list(errors) == ["/r7", "/r6", "/r5", "/r4", "/r3", "/r2", "other"]
    assert errors["other"][-1] == 1 + 2
