"""API token parsing and the Authorization header it produces."""

from __future__ import annotations

from dataclasses import dataclass, field

from ._exceptions import InvalidTokenError

_FORM = "user@realm!tokenid=secret"


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A PVE API token: ``user@realm!tokenid=secret``, split into its parts.

    ``repr()`` and ``str()`` never show the secret.

    Example:
        >>> token = ApiToken.parse("automation@pve!ci=11111111-2222-3333-4444-555555555555")
        >>> token.token_id
        'automation@pve!ci'
    """

    user: str
    realm: str
    token_name: str
    secret: str = field(repr=False)

    def __post_init__(self) -> None:
        owner = f"{self.user}@{self.realm}" if self.user and self.realm else "the token"
        if not self.user:
            raise InvalidTokenError(f"API token user is empty; expected {_FORM}")
        if not self.realm:
            raise InvalidTokenError(f"API token realm is empty for user {self.user!r}; expected {_FORM}")
        if not self.token_name:
            raise InvalidTokenError(f"API token name is empty for {owner}; expected {_FORM}")
        if not self.secret:
            raise InvalidTokenError(
                f"API token secret is missing for {owner}!{self.token_name}; expected {_FORM}, "
                "with the secret PVE showed once when the token was created"
            )
        for part, value in (("realm", self.realm), ("token name", self.token_name)):
            if "!" in value or "=" in value or "@" in value or any(ch.isspace() for ch in value):
                raise InvalidTokenError(
                    f"API token {part} {value!r} of {owner} contains '@', '!', '=' or white space; "
                    f"expected {_FORM}"
                )
        if any(ch.isspace() for ch in self.secret):
            raise InvalidTokenError(
                f"API token secret of {owner}!{self.token_name} contains white space; "
                "check for a line break copied with it"
            )

    @classmethod
    def parse(cls, text: str) -> ApiToken:
        """Parse ``user@realm!tokenid=secret``.

        The realm is what follows the last ``@`` before the ``!``, so users whose
        name is an e-mail address (``user.name@example.com@entra!ci=...``) work.

        Raises:
            InvalidTokenError: the text is not of that form. The message names the
                part that is wrong and never contains the secret.
        """
        if not isinstance(text, str):
            raise InvalidTokenError(f"API token must be text of the form {_FORM}, not {type(text).__name__}")
        text = text.strip()
        # Accept a value copied from an Authorization header as well.
        text = text.removeprefix("PVEAPIToken=")
        if not text:
            raise InvalidTokenError(
                f"API token is empty; pass it as {_FORM}, as PVE showed it when the token was created "
                "(Datacenter > Permissions > API Tokens)"
            )
        userid, bang, rest = text.partition("!")
        if not bang:
            raise InvalidTokenError(
                f"API token has no '!' between user@realm and the token name; expected {_FORM}"
            )
        if "!" in rest:
            raise InvalidTokenError(
                f"API token for {userid!r} contains more than one '!'; expected exactly one, as in {_FORM}"
            )
        token_name, equals, secret = rest.partition("=")
        if not equals:
            raise InvalidTokenError(
                f"API token for {userid!r} has no secret: expected {_FORM}, with the secret after '='"
            )
        user, at, realm = userid.rpartition("@")
        if not at:
            raise InvalidTokenError(f"API token user {userid!r} has no '@realm'; expected {_FORM}")
        return cls(user=user, realm=realm, token_name=token_name, secret=secret)

    @property
    def userid(self) -> str:
        """The owning user as PVE writes it: ``user@realm``."""
        return f"{self.user}@{self.realm}"

    @property
    def token_id(self) -> str:
        """The token's full id as PVE writes it in UPIDs and ACLs: ``user@realm!tokenid``."""
        return f"{self.userid}!{self.token_name}"

    def authorization_header(self) -> str:
        """Return the value of the ``Authorization`` header, sent literally as PVE documents it."""
        return f"PVEAPIToken={self.token_id}={self.secret}"

    def __str__(self) -> str:
        return f"{self.token_id}=***"
