"""Mapping of HTTP error responses, PVE's proxy codes included, to exceptions."""

from __future__ import annotations

import http.client

import pytest

from pvekit import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    NodeUnreachableError,
    NotFoundError,
    PermissionDeniedError,
    ProxyError,
    RRDError,
    ServerError,
)
from pvekit._core import error_from_response, task_failure_hint
from tests.scripted import response


@pytest.mark.parametrize("code", [595, 596, 599])
def test_nonstandard_codes_keep_reason(code: int) -> None:
    # The standard table has no entry for these; looking one up is what crashed other clients.
    assert http.client.responses.get(code) is None
    reason = (
        "Broken pipe" if code == 596 else "Errors during connection establishment, proxy handshake: No route to host"
    )

    error = error_from_response("GET", "/nodes/pve2/qemu", response(code, reason=reason))

    assert error.status_code == code
    assert error.reason == reason
    assert error.message == reason
    assert isinstance(error, ProxyError)
    assert not isinstance(error, AuthenticationError)


def test_595_and_596_are_node_unreachable() -> None:
    assert isinstance(error_from_response("GET", "/x", response(596, reason="Broken pipe")), NodeUnreachableError)
    assert isinstance(error_from_response("GET", "/x", response(595, reason="No route to host")), NodeUnreachableError)
    assert not isinstance(error_from_response("GET", "/x", response(599, reason="other")), NodeUnreachableError)


def test_bad_request_keeps_parameter_errors() -> None:
    body = {
        "data": None,
        "errors": {"limit": "property is not defined in schema and the schema does not allow additional properties"},
    }

    error = error_from_response("GET", "/cluster/tasks", response(400, body, reason="Parameter verification failed."))

    assert isinstance(error, BadRequestError)
    assert error.errors == {"limit": body["errors"]["limit"]}
    assert "limit" in str(error)


def test_401_and_403_are_distinct() -> None:
    unauthorized = error_from_response(
        "GET", "/nodes", response(401, reason="no such token 'TOKENID' for user 'dev@pve'")
    )
    denied = {"data": None, "message": "Permission check failed (/vms/100, VM.PowerMgmt)\n"}
    start = "/nodes/pve1/qemu/100/status/start"
    forbidden = error_from_response("POST", start, response(403, denied, reason="Forbidden"))

    assert isinstance(unauthorized, AuthenticationError)
    assert "TOKENID" in unauthorized.message
    assert isinstance(forbidden, PermissionDeniedError)
    assert forbidden.acl_path == "/vms/100"
    assert forbidden.privilege == "VM.PowerMgmt"
    assert forbidden.message == "Permission check failed (/vms/100, VM.PowerMgmt)"


def test_500_message_and_rrd_error() -> None:
    rrd = "RRD error: No DS called 'AVERAGE' in '/var/lib/rrdcached/db/pve-vm-9.0/100'"
    body = {"message": rrd + "\n", "data": None}

    error = error_from_response("GET", "/nodes/pve1/qemu/100/rrddata", response(500, body, reason=rrd))
    generic = error_from_response("GET", "/x", response(500, {"message": "unable to open file - Read-only\n"}))

    assert isinstance(error, RRDError)
    assert error.message == rrd
    assert type(generic) is ServerError
    assert generic.message == "unable to open file - Read-only"


def test_404_is_not_found() -> None:
    assert isinstance(error_from_response("GET", "/x", response(404, reason="Not Found")), NotFoundError)


def test_error_without_body_uses_status_line() -> None:
    error = error_from_response("GET", "/x", response(502, raw=b"<html>bad gateway</html>", reason="Bad Gateway"))

    assert isinstance(error, ApiError)
    assert error.message == "Bad Gateway"




def test_skiplock_rejection_explains_tokens() -> None:
    body = {"message": "Parameter verification failed.", "errors": {"skiplock": "Only root may use this option."}}

    error = error_from_response("POST", "/nodes/pve1/qemu/100/status/stop", response(400, body))

    assert error.errors == {"skiplock": "Only root may use this option."}
    assert "root@pam logged in with its password" in str(error)
    assert "every API token" in str(error)


def test_other_400_has_no_skiplock_hint() -> None:
    body = {"message": "Parameter verification failed.", "errors": {"timeout": "invalid integer"}}

    error = error_from_response("POST", "/nodes/pve1/qemu/100/status/stop", response(400, body))

    assert "skiplock" not in str(error)


@pytest.mark.parametrize(
    ("exitstatus", "advice"),
    [
        ("VM is locked (snapshot)", "qm unlock 100"),
        ("VM is locked (backup)", "a backup of it is running"),
        ("can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout", "configuration lock"),
    ],
)
def test_task_lock_failure_gets_advice(exitstatus: str, advice: str) -> None:
    assert advice in task_failure_hint(exitstatus, 100)


def test_other_task_failure_gets_no_advice() -> None:
    assert task_failure_hint("start failed: QEMU exited with code 1", 100) == ""


def test_unreachable_node_named_with_advice() -> None:
    error = error_from_response(
        "GET", "/nodes/pve2/qemu/101/status/current", response(595, reason="No route to host"), retries=3,
        elapsed_seconds=1.5,
    )  # fmt: skip

    assert isinstance(error, NodeUnreachableError)
    assert "could not reach node 'pve2', still after 3 retries over 1.5 s" in str(error)
    assert "pvecm status" in str(error)


def test_unreachable_write_node_named() -> None:
    error = error_from_response("POST", "/nodes/pve2/qemu/101/status/stop", response(595, reason="No route to host"))

    assert "could not reach node 'pve2'; check that it is online" in str(error)


def test_decade_on_older_pve_explained() -> None:
    problem = "value 'decade' does not have a value in the enumeration 'hour, day, week, month, year'"
    body = {"data": None, "errors": {"timeframe": problem}}
    rejected = response(400, body, reason="Parameter verification failed.")

    error = error_from_response("GET", "/nodes/pve1/qemu/100/rrddata", rejected)

    assert "decade timeframe needs PVE 9 or later" in str(error)
