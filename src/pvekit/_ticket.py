"""Ticket login with user and password: the login state, login, renewal, and one retry after a 401.

PVE's ``POST /access/ticket`` returns, for a valid user name and password, a
ticket ``PVE:<userid>:<issue time as 8 hex digits>::<signature>``, and a CSRF
prevention token. Every later request carries the ticket in the
``PVEAuthCookie`` cookie, and writes (POST, PUT, DELETE) also carry the CSRF
token in the ``CSRFPreventionToken`` header. A ticket lives 2 hours; posting it
as the password before then returns a new ticket and a new CSRF token.

The operations here are I/O-free like the rest of the core: they yield
``Send`` effects, so Client and AsyncClient share them, and both build each
request's headers from the one ``TicketAuth`` of the client.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

from ._clock import Clock
from ._core import (
    Method,
    Operation,
    ParamValue,
    RawResponse,
    Reply,
    Send,
    Session,
    decode_reply,
    error_from_response,
    exclusive,
)
from ._exceptions import (
    ApiError,
    AuthenticationError,
    InvalidInputError,
    PveError,
    ServerError,
    TransportError,
    TwoFactorRequiredError,
)
from ._retry import RetryPolicy

logger = logging.getLogger("pvekit")

TICKET_PATH = "/access/ticket"
# PVE's PVE::AccessControl accepts a ticket from 5 minutes before its issue time to 2 hours after it.
TICKET_LIFETIME_SECONDS = 2 * 3600
# Renewing halfway through the lifetime leaves an hour for slow requests and clock differences.
RENEW_AFTER_SECONDS = TICKET_LIFETIME_SECONDS // 2
# When a ticket's issue time is further than this from the local clock on arrival, the two clocks
# differ, and the ticket's age is counted from its arrival instead.
CLOCK_DIFFERENCE_TOLERANCE_SECONDS = 300
WRITE_METHODS = frozenset({"POST", "PUT", "DELETE"})
DEFAULT_REALM = "pam"

_TICKET_ISSUE_TIME = re.compile(r"^PVE:[^:]+:([0-9A-Fa-f]{8})::")
# PVE 7 and later respond to the password step of a two-factor login with a challenge ticket of the
# form PVE:!tfa!<URL-encoded JSON naming the factors>:<issue time>::<signature>.
_CHALLENGE_PREFIX = "PVE:!tfa!"
# PVE reads the type of a second-factor code from its prefix: totp:123456, recovery:KEY.
_FACTOR_ANSWER = re.compile(r"^[a-z]+:")

OtpCallback = Callable[[], str]


class Secret(str):
    """A string whose repr is ``'***'``: passwords, tickets, CSRF tokens and one-time codes.

    Its value is unchanged for every other use, so it can go into a request as it is.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "'***'"


def login_userid(user: str) -> str:
    """Return ``user@realm`` for a login; a user without ``@realm`` belongs to the pam realm.

    Raises:
        InvalidInputError: the user is empty, has an empty realm, or is an API token id.
    """
    if not isinstance(user, str) or not user.strip():
        raise InvalidInputError("user is empty; give the PVE user as name@realm, such as api@pve or root@pam")
    user = user.strip()
    if "!" in user:
        # Show only what precedes '!': a whole token string would carry its secret.
        owner = user.partition("!")[0]
        raise InvalidInputError(
            f"user {owner + '!...'!r} is an API token id; pass the token as token='user@realm!tokenid=secret', "
            "which is never sent to the login endpoint"
        )
    name, at, realm = user.rpartition("@")
    if not at:
        return f"{user}@{DEFAULT_REALM}"
    if not name or not realm:
        raise InvalidInputError(f"user {user!r} has an empty name or realm; give it as name@realm, such as api@pve")
    return user


def ticket_issue_time(ticket: str) -> float | None:
    """Return the Unix time in a ticket's hex field, or None when the ticket is not of PVE's form."""
    match = _TICKET_ISSUE_TIME.match(ticket)
    return float(int(match.group(1), 16)) if match else None


def challenge_factors(ticket: str) -> tuple[str, ...]:
    """Return the second-factor types a PVE 7+ challenge ticket names, or () when it names none."""
    if not ticket.startswith(_CHALLENGE_PREFIX):
        return ()
    encoded = ticket[len(_CHALLENGE_PREFIX) :].partition(":")[0]
    try:
        challenge = json.loads(unquote(encoded))
    except ValueError:
        return ()
    if not isinstance(challenge, Mapping):
        return ()
    return tuple(sorted(str(factor) for factor, offered in challenge.items() if offered))


class TicketAuth:
    """The ticket login state of one client, and the operations that log in and renew.

    Holds the ticket, its CSRF token and its issue time. Both runners ask it for
    each request's headers, so a renewal takes effect on the next request of
    either kind. ``repr()`` shows the user only.
    """

    def __init__(
        self,
        user: str,
        password: str,
        *,
        otp: str | None = None,
        otp_callback: OtpCallback | None = None,
        clock: Clock,
    ) -> None:
        if not isinstance(password, str) or not password:
            raise InvalidInputError("password is empty; give the PVE password of the user")
        if otp is not None and otp_callback is not None:
            raise InvalidInputError("otp and otp_callback exclude each other; give one of them")
        if otp is not None and (not isinstance(otp, str) or not otp.strip()):
            raise InvalidInputError(
                "otp must be the current code as a non-empty string, such as '012345' (a number loses leading zeros)"
            )
        if otp_callback is not None and not callable(otp_callback):
            raise InvalidInputError("otp_callback must be a function that returns the current code as a string")
        self.userid = login_userid(user)
        self._password = Secret(password)
        self._otp = Secret(otp.strip()) if otp is not None else None
        self._otp_used = False
        self._otp_callback = otp_callback
        self._clock = clock
        self._ticket: Secret | None = None
        self._csrf: Secret | None = None
        self._issued_wall = 0.0
        self._clock_warning_logged = False
        # Counts the tickets received. A request that got 401 with an older ticket
        # retries with the newer one instead of logging in again.
        self.generation = 0

    def __repr__(self) -> str:
        return f"TicketAuth(user={self.userid!r}, logged_in={self._ticket is not None})"

    # ------------------------------------------------------------ headers

    def headers(self, method: str, path: str) -> dict[str, str]:
        """Return the cookie and, for writes, the CSRF header of a request; none for the login itself."""
        if path == TICKET_PATH or self._ticket is None:
            return {}
        headers = {"Cookie": f"PVEAuthCookie={self._ticket}"}
        if method in WRITE_METHODS and self._csrf is not None:
            headers["CSRFPreventionToken"] = str(self._csrf)
        return headers

    def age_seconds(self) -> float:
        """Return the current ticket's age in seconds, by its issue time; 0 without a ticket."""
        if self._ticket is None:
            return 0.0
        return self._clock.wall() - self._issued_wall

    def _needs_refresh(self) -> bool:
        return self._ticket is None or self.age_seconds() >= RENEW_AFTER_SECONDS

    # ------------------------------------------------------------ operations

    def ensure_ticket(self) -> Operation[None]:
        """Log in when there is no ticket, and renew one that is an hour old or older."""
        if self._needs_refresh():
            yield from exclusive(self._refresh(self.generation))

    def relogin(self, seen_generation: int) -> Operation[None]:
        """Log in again with the password, unless a newer ticket than ``seen_generation`` arrived meanwhile."""
        yield from exclusive(self._relogin(seen_generation))

    def _refresh(self, seen_generation: int) -> Operation[None]:
        if self.generation != seen_generation and not self._needs_refresh():
            return  # another request logged in or renewed while this one waited
        if self._ticket is None:
            yield from self._login()
            return
        try:
            yield from self._renew()
        except AuthenticationError as exc:
            logger.info("renewing the ticket of %s failed (%s); logging in with the password", self.userid, exc.message)
            yield from self._login()
        except PveError as exc:
            # The current ticket stays valid until two hours after its issue, so requests go on with it
            # and the next one tries the renewal again.
            logger.info("renewing the ticket of %s failed (%s); going on with the current ticket", self.userid, exc)

    def _relogin(self, seen_generation: int) -> Operation[None]:
        if self.generation != seen_generation:
            return
        yield from self._login()

    def _login(self) -> Operation[None]:
        data = yield from self._post(("username", self.userid), ("password", self._password))
        if data.get("NeedTFA"):
            data = yield from self._second_factor(Secret(str(data.get("ticket") or "")))
        self._store(data)
        logger.debug("logged in to PVE as %s", self.userid)

    def _renew(self) -> Operation[None]:
        assert self._ticket is not None
        data = yield from self._post(("username", self.userid), ("password", self._ticket))
        if data.get("NeedTFA"):
            raise AuthenticationError(
                "PVE asked for a second factor to renew the ticket",
                status_code=401,
                method="POST",
                path=TICKET_PATH,
            )
        self._store(data)
        logger.debug("renewed the ticket of %s", self.userid)

    def _second_factor(self, challenge: Secret) -> Operation[Mapping[str, Any]]:
        factors = challenge_factors(challenge)
        code = self._next_code(factors)
        if challenge.startswith(_CHALLENGE_PREFIX):
            answer = code if _FACTOR_ANSWER.match(code) else Secret(f"totp:{code}")
            data = yield from self._post(
                ("username", self.userid), ("tfa-challenge", challenge), ("password", answer), step="second factor"
            )
        else:
            # NOTE: releases before PVE 7 take the code as ``otp`` next to the password. pvekit
            # supports PVE 7.4 and later, and this form is not tested against an older release.
            data = yield from self._post(
                ("username", self.userid), ("password", self._password), ("otp", code), step="second factor"
            )
        if data.get("NeedTFA"):
            raise AuthenticationError(
                f"PVE still asks {self.userid} for a second factor after the code was sent; "
                "check that the code is a current TOTP code",
                status_code=401,
                method="POST",
                path=TICKET_PATH,
            )
        return data

    def _next_code(self, factors: tuple[str, ...]) -> Secret:
        if self._otp_callback is not None:
            code = self._otp_callback()
            if not isinstance(code, str) or not code.strip():
                raise InvalidInputError("otp_callback returned no code; it must return the current code as a string")
            return Secret(code.strip())
        if self._otp is not None:
            code = self._otp
            # A TOTP code is valid for about 30 seconds, so it serves the first login only.
            self._otp = None
            self._otp_used = True
            return code
        offered = f" (PVE offers: {', '.join(factors)})" if factors else ""
        used = " The otp= code served the first login already." if self._otp_used else ""
        raise TwoFactorRequiredError(
            f"login of {self.userid} needs a second factor{offered}.{used} Pass otp= with the current TOTP code, "
            "or otp_callback= with a function that returns one whenever pvekit logs in. "
            "An API token (token=...) needs no second factor",
            userid=self.userid,
            factors=factors,
            method="POST",
            path=TICKET_PATH,
        )

    def _post(self, *form: tuple[str, str], step: str = "password") -> Operation[Mapping[str, Any]]:
        """Send one login request and return the ``data`` of PVE's response."""
        outcome: RawResponse | TransportError = yield Send("POST", TICKET_PATH, form)
        if isinstance(outcome, TransportError):
            raise outcome
        logger.debug("POST %s -> %d in %.3f s", TICKET_PATH, outcome.status_code, outcome.elapsed_seconds)
        if outcome.status_code >= 400:
            raise self._rejected(error_from_response("POST", TICKET_PATH, outcome), step)
        data = decode_reply("POST", TICKET_PATH, outcome).data
        if not isinstance(data, Mapping) or not data.get("ticket"):
            raise ServerError(
                "PVE's login response contains no ticket; check that the host and port point at pveproxy",
                status_code=outcome.status_code,
                reason=outcome.reason,
                method="POST",
                path=TICKET_PATH,
            )
        return data

    def _rejected(self, error: ApiError, step: str) -> ApiError:
        """Build the error for a rejected login request, with no secret in it."""
        if self._mentions_secret(error):
            # Guards against a server or proxy in front of PVE that echoes a credential in its message.
            kind = AuthenticationError if isinstance(error, AuthenticationError) else ApiError
            error = kind(
                "the server's message is left out because it contains a credential",
                status_code=error.status_code,
                method="POST",
                path=TICKET_PATH,
            )
        if not isinstance(error, AuthenticationError):
            return error
        if step == "second factor":
            advice = "check that the code is current and that the clock of the device making it is right"
        else:
            advice = "check the user name, the realm after '@' (pam, pve, ...) and the password"
        return AuthenticationError(
            f"PVE rejected the {step} of {self.userid} ({error.message}); {advice}",
            status_code=error.status_code,
            reason=error.reason,
            method="POST",
            path=TICKET_PATH,
        )

    def _mentions_secret(self, error: ApiError) -> bool:
        texts = [error.message, error.reason, *error.errors.keys(), *error.errors.values()]
        secrets = [value for value in (self._password, self._ticket, self._csrf, self._otp) if value]
        return any(secret in text for secret in secrets for text in texts)

    def _store(self, data: Mapping[str, Any]) -> None:
        ticket = Secret(str(data["ticket"]))
        csrf = data.get("CSRFPreventionToken")
        now = self._clock.wall()
        issued = ticket_issue_time(ticket)
        if issued is None or abs(now - issued) > CLOCK_DIFFERENCE_TOLERANCE_SECONDS:
            if issued is not None:
                self._log_clock_difference(now - issued)
            issued = now
        self._ticket = ticket
        self._csrf = Secret(str(csrf)) if csrf else None
        self._issued_wall = issued
        self.generation += 1

    def _log_clock_difference(self, difference_seconds: float) -> None:
        level = logging.DEBUG if self._clock_warning_logged else logging.WARNING
        self._clock_warning_logged = True
        logger.log(
            level,
            "this host's clock and PVE's differ by %.0f s, so ticket renewal is timed from the ticket's arrival; "
            "PVE nodes whose clocks differ reject each other's tickets, so check that NTP runs everywhere",
            difference_seconds,
        )


class TicketSession(Session):
    """A Session for ticket auth: each request first logs in or renews, and logs in again once after a 401."""

    def __init__(self, *, auth: TicketAuth, clock: Clock, retry: RetryPolicy, concurrency: int) -> None:
        super().__init__(clock=clock, retry=retry, auth_id=auth.userid, concurrency=concurrency)
        self.auth = auth

    def request(
        self,
        method: Method,
        path: str,
        params: Mapping[str, ParamValue] | None = None,
        *,
        deadline: float | None = None,
    ) -> Operation[Reply]:
        """Send a request under the retry policy, with a fresh ticket, and log in again once after a 401.

        PVE checks the ticket before it acts, so a write rejected with 401 did
        nothing and may be sent again.
        """
        yield from self.auth.ensure_ticket()
        seen = self.auth.generation
        try:
            return (yield from super().request(method, path, params, deadline=deadline))
        except AuthenticationError as exc:
            logger.info(
                "%s %s: PVE rejected the ticket of %s (%s); logging in again",
                method,
                path,
                self.auth.userid,
                exc.message,
            )

        yield from self.auth.relogin(seen)
        try:
            return (yield from super().request(method, path, params, deadline=deadline))
        except AuthenticationError as exc:
            raise AuthenticationError(
                f"PVE rejected the ticket of {self.auth.userid} ({exc.message}) right after a successful login. "
                "A likely cause is clock skew between the nodes: a node rejects a ticket issued more than "
                "5 minutes in its future or 2 hours in its past. Check that NTP keeps every node's clock in sync",
                status_code=exc.status_code,
                reason=exc.reason,
                method=method,
                path=path,
            ) from None
