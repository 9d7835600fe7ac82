"""The retry policy: which failures are retried, the pauses, the budget and the caller's deadline."""

from __future__ import annotations

import pytest

from pvekit import (
    Client,
    InvalidInputError,
    OutcomeUnknownError,
    PveConnectionError,
    PveTimeoutError,
    RetryPolicy,
    ServerError,
    TLSError,
)
from pvekit._core import Send, Sleep, request
from tests.conftest import FakeClock
from tests.scripted import drive, response, sends

OK = response(200, {"data": {"ok": 1}})


def sent_error() -> PveConnectionError:
    """A connection failure after the request left: reset, or closed by the server while idle."""
    return PveConnectionError("reset", method="POST", url="https://127.0.0.1:8006/api2/json/x", request_sent=True)


def unsent_error() -> PveConnectionError:
    """A connection failure before any byte of the request left: refused."""
    return PveConnectionError("refused", method="POST", url="https://127.0.0.1:8006/api2/json/x", request_sent=False)


def steady(value: float = 0.0) -> float:
    return value


POLICY = RetryPolicy(random_source=steady)


@pytest.mark.parametrize("code", [502, 503, 595, 596])
def test_get_retried_on_gateway_and_proxy_codes(code: int) -> None:
    assert POLICY.should_retry("GET", 0, code)
    assert not POLICY.should_retry("GET", 3, code)


@pytest.mark.parametrize("code", [400, 401, 403, 404, 500, 501, 599])
def test_get_not_retried_on_other_codes(code: int) -> None:
    assert not POLICY.should_retry("GET", 0, code)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_sent_writes_never_retried(method: str) -> None:
    assert not POLICY.should_retry(method, 0, 503)
    assert not POLICY.should_retry(method, 0, 595)
    assert not POLICY.should_retry(method, 0, sent_error())
    assert not POLICY.should_retry(method, 0, PveTimeoutError("slow", request_sent=True))


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
def test_unsent_request_retried_for_any_method(method: str) -> None:
    assert POLICY.should_retry(method, 0, unsent_error())


def test_get_retried_on_connection_error_not_timeout() -> None:
    assert POLICY.should_retry("GET", 0, sent_error())
    assert not POLICY.should_retry("GET", 0, PveTimeoutError("slow"))
    assert not POLICY.should_retry("GET", 0, PveTimeoutError("connect", request_sent=False))


def test_tls_failure_never_retried() -> None:
    assert not POLICY.should_retry("GET", 0, TLSError("bad certificate", request_sent=False))


def test_budget_ends_retries() -> None:
    policy = RetryPolicy(budget_seconds=5.0)

    assert policy.should_retry("GET", 0, 503, elapsed_seconds=4.9)
    assert not policy.should_retry("GET", 0, 503, elapsed_seconds=5.0)


def test_off_never_retries() -> None:
    off = RetryPolicy.off()

    assert not off.should_retry("GET", 0, 503)
    assert not off.should_retry("GET", 0, unsent_error())


def test_pause_grows_and_is_capped() -> None:
    no_jitter = RetryPolicy(jitter=0.0)

    assert [no_jitter.pause_seconds(n) for n in range(6)] == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0]


def test_jitter_shortens_pause_within_share() -> None:
    low = RetryPolicy(jitter=0.5, random_source=lambda: 0.999999)
    high = RetryPolicy(jitter=0.5, random_source=lambda: 0.0)

    assert low.pause_seconds(2) == pytest.approx(0.5, rel=1e-5)
    assert high.pause_seconds(2) == 1.0


@pytest.mark.parametrize(
    "options",
    [
        {"max_retries": -1},
        {"max_retries": 1.5},
        {"max_retries": True},
        {"backoff_seconds": -0.1},
        {"budget_seconds": float("nan")},
        {"jitter": 1.5},
        {"jitter": "half"},
    ],
)
def test_invalid_policy_rejected(options: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError) as caught:
        RetryPolicy(**options)  # type: ignore[arg-type]

    name = next(iter(options))
    assert name in str(caught.value)


def test_client_rejects_other_retry_value() -> None:
    with pytest.raises(InvalidInputError, match="RetryPolicy"):
        Client("127.0.0.1", "root@pam!ci=00000000-0000-0000-0000-000000000000", retry=3)  # type: ignore[arg-type]


def test_get_recovers_after_retries() -> None:
    reply, effects = drive(request("GET", "/nodes", retry=POLICY), [response(503), sent_error(), OK])

    assert reply.data == {"ok": 1}
    assert sends(effects) == [("GET", "/nodes")] * 3
    assert [effect.seconds for effect in effects if isinstance(effect, Sleep)] == [0.25, 0.5]


def test_get_gives_up_after_max_retries() -> None:
    policy = RetryPolicy(max_retries=2, random_source=steady)

    with pytest.raises(ServerError):
        drive(request("GET", "/nodes", retry=policy), [response(503)] * 3)


def test_lost_write_raises_outcome_unknown_once() -> None:
    with pytest.raises(OutcomeUnknownError) as caught:
        drive(request("POST", "/nodes/pve1/qemu/100/status/stop", retry=POLICY), [sent_error()])

    message = str(caught.value)
    assert "may or may not" in message
    assert "tasks" in message
    assert isinstance(caught.value.__cause__, PveConnectionError)


def test_lost_write_sent_once() -> None:
    operation = request("POST", "/nodes/pve1/qemu/100/status/stop", retry=POLICY)
    first = operation.send(None)

    assert isinstance(first, Send)
    with pytest.raises(OutcomeUnknownError):
        operation.send(sent_error())


def test_unsent_write_sent_again() -> None:
    reply, effects = drive(request("POST", "/nodes/pve1/qemu/100/status/stop", retry=POLICY), [unsent_error(), OK])

    assert reply.data == {"ok": 1}
    assert len(sends(effects)) == 2


def test_no_retry_starts_past_budget() -> None:
    clock = FakeClock()
    policy = RetryPolicy(max_retries=5, budget_seconds=2.0, jitter=0.0)
    operation = request("GET", "/nodes", retry=policy, clock=clock)
    starts = [clock.monotonic()]
    effect = operation.send(None)

    with pytest.raises(ServerError) as caught:
        while True:
            if isinstance(effect, Sleep):
                clock.offset += effect.seconds
                effect = operation.send(None)
            else:
                starts.append(clock.monotonic())
                effect = operation.send(response(503))

    # Pauses of 0.25, 0.5 and 1 s fit in the 2 s budget; the next, of 2 s, would start a retry at 3.75 s.
    retry_starts = [round(moment - starts[0], 2) for moment in starts[2:]]
    assert retry_starts == [0.25, 0.75, 1.75]
    assert "after 3 retries" in str(caught.value)


def test_no_retry_past_deadline() -> None:
    clock = FakeClock()
    deadline = clock.monotonic() + 0.1

    with pytest.raises(ServerError):
        drive(request("GET", "/nodes", retry=POLICY, clock=clock, deadline=deadline), [response(503)])


def test_deadline_caps_request_time() -> None:
    clock = FakeClock()
    operation = request("GET", "/nodes", retry=POLICY, clock=clock, deadline=clock.monotonic() + 7.0)

    first = operation.send(None)

    assert isinstance(first, Send)
    assert first.time_left is not None
    assert 6.0 < first.time_left <= 7.0


def test_request_without_deadline_has_no_cap() -> None:
    first = request("GET", "/nodes", retry=POLICY).send(None)

    assert isinstance(first, Send)
    assert first.time_left is None


def test_exhausted_retries_named_in_error() -> None:
    clock = FakeClock()
    policy = RetryPolicy(max_retries=2, random_source=steady)
    replies = [response(503, {"message": "pveproxy busy"})] * 3

    with pytest.raises(ServerError) as caught:
        drive(request("GET", "/cluster/resources", retry=policy, clock=clock), replies)

    assert caught.value.message == "pveproxy busy"
    assert "still responded with HTTP 503 after 2 retries" in str(caught.value)


def test_single_failure_has_no_retry_note() -> None:
    with pytest.raises(ServerError) as caught:
        drive(request("GET", "/cluster/resources", retry=RetryPolicy.off()), [response(503)])

    assert "retries" not in str(caught.value)
