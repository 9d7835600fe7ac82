"""UPID parsing and formatting."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvekit import InvalidInputError, Upid

QMSTART = "UPID:pve1:00007323:001036A5:6419CAF8:qmstart:100:root@pam:"


def test_upid_hex_fields() -> None:
    upid = Upid.parse(QMSTART)

    assert upid.node == "pve1"
    assert upid.pid == 0x7323
    assert upid.pstart == 0x001036A5
    assert upid.starttime == 1679411960
    assert upid.started_at == datetime(2023, 3, 21, 15, 19, 20, tzinfo=timezone.utc)
    assert upid.task_type == "qmstart"
    assert upid.vmid == 100
    assert str(upid) == QMSTART


def test_upid_token_user() -> None:
    upid = Upid.parse("UPID:pve1:000D7AA2:08D5A17C:63DF62A5:vzclone:200:root@pam!api_token:")

    assert upid.user == "root@pam!api_token"
    assert upid.auth_id == "root@pam!api_token"


def test_upid_empty_id() -> None:
    upid = Upid.parse("UPID:pve1:00001000:00002000:63DF62A5:aptupdate::root@pam:")

    assert upid.id == ""
    assert upid.vmid is None


def test_upid_extra_fields_kept() -> None:
    text = "UPID:pve1:00001000:00002000:63DF62A5:qmstart:100:root@pam:future:"
    upid = Upid.parse(text)

    assert upid.extra == ("future",)
    assert str(upid) == text


@pytest.mark.parametrize(
    "text",
    ["", "UPID:pve1:xyz:1:1:qmstart:100:root@pam:", "TASK:pve1:1:1:1:qmstart:100:root@pam:", "UPID:pve1:1:1"],
)
def test_invalid_upid_rejected(text: str) -> None:
    with pytest.raises(InvalidInputError, match="invalid UPID"):
        Upid.parse(text)


@given(
    node=st.from_regex(r"[a-zA-Z][a-zA-Z0-9-]{0,20}", fullmatch=True),
    pid=st.integers(0, 0xFFFFFFFF),
    pstart=st.integers(0, 0xFFFFFFFF),
    starttime=st.integers(0, 0xFFFFFFFF),
    task_type=st.from_regex(r"[a-z]{1,12}", fullmatch=True),
    task_id=st.from_regex(r"[0-9a-z-]{0,10}", fullmatch=True),
    user=st.from_regex(r"[a-z]{1,8}@(pam|pve)(![a-z_]{1,8})?", fullmatch=True),
)
def test_upid_round_trip(
    node: str, pid: int, pstart: int, starttime: int, task_type: str, task_id: str, user: str
) -> None:
    upid = Upid(node, pid, pstart, starttime, task_type, task_id, user)

    assert Upid.parse(str(upid)) == upid
