"""Who may use the review station: the holder of one token, on this machine only.

The token is random and printed at start, or read from a file only its owner can read (the service user's).
A request proves it with ``Authorization: Bearer <token>`` or with the cookie the login form sets (HttpOnly,
SameSite=Strict, so other sites can neither read nor send it). Comparisons take constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import stat
from http.cookies import CookieError, SimpleCookie
from pathlib import Path

COOKIE = "veil_review"
MIN_TOKEN_CHARS = 16


class AuthError(Exception):
    """The station must not start: the message says why."""


def new_token() -> str:
    return secrets.token_urlsafe(32)


def read_token_file(path: Path) -> str:
    """The token in ``path``, which must be a regular file of the current user that nobody else can read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise AuthError(f"token file {str(path)!r}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise AuthError(f"token file {str(path)!r} is not a regular file")
        if st.st_uid != os.getuid():
            raise AuthError(f"token file {str(path)!r} belongs to uid {st.st_uid}, not to this user ({os.getuid()})")
        if st.st_mode & 0o077:
            raise AuthError(f"token file {str(path)!r} is readable by others (mode {stat.S_IMODE(st.st_mode):04o}); "
                            "chmod 600 it")
        with os.fdopen(fd, "r", encoding="utf-8", closefd=False) as handle:
            token = handle.read().strip()
    finally:
        os.close(fd)
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
        raise AuthError(f"token file {str(path)!r} must hold one token of at least {MIN_TOKEN_CHARS} characters")
    return token


def check_loopback(host: str) -> None:
    """Refuse any address but the loopback one: the station shows masked results only, but to this machine."""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise AuthError(f"the review station listens on the loopback address only (127.0.0.1 or ::1), not {host!r}")


class Authenticator:
    def __init__(self, token: str) -> None:
        self._token = token.encode()

    def valid(self, candidate: str | None) -> bool:
        return candidate is not None and hmac.compare_digest(candidate.encode(), self._token)

    def allows(self, authorization: str | None, cookie_header: str | None) -> bool:
        """Whether a request's ``Authorization`` or ``Cookie`` header carries the token."""
        if authorization and authorization.startswith("Bearer ") and self.valid(authorization[7:].strip()):
            return True
        if cookie_header:
            try:
                morsel = SimpleCookie(cookie_header).get(COOKIE)
            except CookieError:
                return False
            return morsel is not None and self.valid(morsel.value)
        return False

    def cookie(self) -> str:
        """The Set-Cookie value the login form answers with."""
        return f"{COOKIE}={self._token.decode()}; HttpOnly; SameSite=Strict; Path=/"
