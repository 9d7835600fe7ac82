"""API token parsing, the mistakes users make with its three parts, and the header it produces."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvekit import ApiToken, Client, InvalidTokenError

SECRET = "11111111-2222-3333-4444-555555555555"


def test_token_header_is_literal() -> None:
    token = ApiToken.parse(f"dev@pve!ci={SECRET}")

    assert token.authorization_header() == f"PVEAPIToken=dev@pve!ci={SECRET}"
    assert token.token_id == "dev@pve!ci"
    assert token.userid == "dev@pve"


def test_token_from_parts_equals_parsed() -> None:
    parts = ApiToken(user="dev", realm="pve", token_name="ci", secret=SECRET)

    assert parts == ApiToken.parse(f"dev@pve!ci={SECRET}")


def test_email_user_takes_realm_after_last_at() -> None:
    token = ApiToken.parse(f"user.name@example.com@entra!automation={SECRET}")

    assert token.user == "user.name@example.com"
    assert token.realm == "entra"
    assert token.token_name == "automation"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"root@pam!proxcenter!tokenid={SECRET}", "more than one '!'"),
        ("cv4pve@pve!cv4pve", "no secret"),
        (f"dev@pve{SECRET}", "no '!'"),
        (f"dev!ci={SECRET}", "no '@realm'"),
        (f"@pve!ci={SECRET}", "user is empty"),
        (f"dev@!ci={SECRET}", "realm is empty"),
        (f"dev@pve!={SECRET}", "name is empty"),
        ("dev@pve!ci=", "secret is missing"),
        ("", "API token is empty"),
        ("   ", "API token is empty"),
    ],
)
def test_malformed_token_names_the_problem(text: str, expected: str) -> None:
    with pytest.raises(InvalidTokenError) as caught:
        ApiToken.parse(text)

    assert expected in str(caught.value)
    assert SECRET not in str(caught.value)


def test_malformed_token_raises_before_any_request() -> None:
    # 127.0.0.1:9 has nothing listening; the error must come from parsing, not from a connection.
    with pytest.raises(InvalidTokenError):
        Client("127.0.0.1:9", token="cv4pve@pve!cv4pve")


def test_token_repr_and_str_hide_secret() -> None:
    token = ApiToken.parse(f"dev@pve!ci={SECRET}")

    assert SECRET not in repr(token)
    assert SECRET not in str(token)


@given(st.text(alphabet=st.characters(blacklist_characters="!=@ \t\r\n"), min_size=1, max_size=20))
def test_secret_never_in_error(middle: str) -> None:
    # Markers around the generated text keep it from matching the fixed words of the message.
    secret = f"Zq9{middle}Xj7"

    # Two '!' make every such token invalid; whatever the secret, the message must not show it.
    with pytest.raises(InvalidTokenError) as caught:
        ApiToken.parse(f"a@pve!x!y={secret}")

    assert secret not in str(caught.value)


def test_header_value_prefix_accepted() -> None:
    token = ApiToken.parse(f"PVEAPIToken=dev@pve!ci={SECRET}")

    assert token.token_id == "dev@pve!ci"
