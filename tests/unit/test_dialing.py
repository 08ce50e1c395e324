"""The bootstrap dial schedule, driven with injected time."""

from __future__ import annotations

import pytest

from fluxnode.core.dialing import BackoffPolicy, DialSchedule, TargetState

A, B = "/ip4/127.0.0.1/tcp/1/p2p/A", "/ip4/127.0.0.1/tcp/2/p2p/B"


def test_backoff_grows_exponentially_and_caps() -> None:
    policy = BackoffPolicy(initial=0.5, factor=2.0, maximum=4.0, jitter=0.0)
    assert [policy.delay(n, 0.0) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert policy.delay(0, 0.3) == 0.0


def test_jitter_stays_within_its_fraction() -> None:
    policy = BackoffPolicy(initial=10.0, factor=1.0, maximum=10.0, jitter=0.1)
    assert policy.delay(1, 0.0) == pytest.approx(9.0)
    assert policy.delay(1, 0.5) == pytest.approx(10.0)
    assert policy.delay(1, 0.999999) == pytest.approx(11.0, rel=1e-5)


def test_all_targets_due_at_start_and_not_redialled_while_dialling() -> None:
    s = DialSchedule([A, B])
    assert s.due(0.0) == [A, B]
    assert s.due(100.0) == []  # both in flight
    assert s.next_wakeup(100.0) is None


def test_failure_backs_off_then_retries() -> None:
    s = DialSchedule([A], BackoffPolicy(initial=1.0, factor=2.0, jitter=0.0))
    s.due(0.0)
    assert s.dial_failed(A, 0.0) == 1.0
    assert s.due(0.5) == []
    assert s.next_wakeup(0.5) == 1.0
    assert s.due(1.0) == [A]
    assert s.dial_failed(A, 1.0) == 2.0
    assert s.due(2.9) == []
    assert s.due(3.0) == [A]


def test_success_resets_failures_and_a_drop_redials_at_once() -> None:
    s = DialSchedule([A], BackoffPolicy(initial=1.0, factor=2.0, jitter=0.0))
    s.due(0.0)
    s.dial_failed(A, 0.0)
    s.due(1.0)
    s.dial_succeeded(A)
    assert s.state(A) is TargetState.CONNECTED
    assert s.connected() == [A]
    assert s.due(50.0) == []  # connected targets are left alone
    s.disconnected(A, 60.0)
    assert s.due(60.0) == [A]
    assert s.dial_failed(A, 60.0) == 1.0  # failure count was reset by the success


def test_disconnect_of_a_waiting_target_changes_nothing() -> None:
    s = DialSchedule([A], BackoffPolicy(initial=5.0, jitter=0.0))
    s.due(0.0)
    s.dial_failed(A, 0.0)
    s.disconnected(A, 1.0)
    assert s.due(1.0) == []
    assert s.next_wakeup(1.0) == 5.0
