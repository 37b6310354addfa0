"""Tryton's JSON-RPC wire protocol over httpx: encoding, the session, and error classification.

Kept apart from the adapter so that the bootstrap helper (and a user's own scripts) can talk to
Tryton with the same client, and so that the rules deciding retry versus dead letter live in one
place. Those rules, from what trytond answers:

* HTTP 401 on a model call: the session expired or was revoked. Log in again, retry once.
* HTTP 503: trytond gave up on a locked database (``DatabaseOperationalError`` after its own
  retries). Lock contention passes, so it is transient.
* HTTP 429 (login throttling), 404 on login (the database is not loaded, see docs/tryton.md),
  5xx, timeouts and refused connections: transient too.
* A ``UserError`` in the reply: Tryton refused the data; a person must change something.
* A ``UserWarning``: Tryton wants someone to confirm. Raised as :class:`TrytonWarning` so the
  caller decides explicitly (the adapter refuses unless the warning is in ``accept_warnings``).
* ``ConcurrencyException``: someone else changed the record meanwhile; transient.

The password is held only in this object and sent only in the login call's body; the session
token goes only in the Authorization header. Neither appears in any message or log line.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import httpx

from claimsync_console.erp.base import (
    ErpUnavailableError,
    PermanentErpError,
    RateLimitedError,
    TransientErpError,
)


class TrytonUserError(PermanentErpError):
    """Tryton refused the request (``UserError``): data or configuration must change first."""

    code = "tryton_user_error"


class TrytonWarning(PermanentErpError):
    """Tryton asked for a confirmation (``UserWarning``) that nobody configured us to give.

    ``name`` is the warning's key: acknowledging it (a ``res.user.warning`` record) lets the
    same request through once; the adapter does that only for names in ``accept_warnings``."""

    code = "tryton_warning"

    def __init__(self, message: str, name: str) -> None:
        super().__init__(message)
        self.name = name


# --------------------------------------------------------------------------- encoding


def _default(value: object) -> object:
    """Tryton's JSON extensions: without them a Decimal would travel as a float."""
    if isinstance(value, Decimal):
        return {"__class__": "Decimal", "decimal": str(value)}
    if isinstance(value, datetime):
        return {
            "__class__": "datetime",
            "year": value.year,
            "month": value.month,
            "day": value.day,
            "hour": value.hour,
            "minute": value.minute,
            "second": value.second,
            "microsecond": value.microsecond,
        }
    if isinstance(value, date):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    if isinstance(value, bytes):
        return {"__class__": "bytes", "base64": base64.b64encode(value).decode()}
    raise TypeError(f"cannot send {type(value).__name__} to Tryton")


def _object_hook(data: dict[str, Any]) -> Any:
    kind = data.get("__class__")
    if kind == "Decimal":
        return Decimal(data["decimal"])
    if kind == "date":
        return date(data["year"], data["month"], data["day"])
    if kind == "datetime":
        return datetime(
            data["year"],
            data["month"],
            data["day"],
            data.get("hour", 0),
            data.get("minute", 0),
            data.get("second", 0),
            data.get("microsecond", 0),
        )
    if kind == "bytes":
        return base64.b64decode(data["base64"])
    return data


def dumps(payload: object) -> bytes:
    return json.dumps(payload, default=_default, separators=(",", ":")).encode()


def loads(body: bytes) -> Any:
    return json.loads(body, object_hook=_object_hook, parse_float=Decimal)


# --------------------------------------------------------------------------- the client


class TrytonRpc:
    """One user's session on one Tryton database; thread-safe (httpx pools the connections)."""

    def __init__(
        self, url: str, database: str, login: str, password: str, timeout: float = 30.0
    ) -> None:
        self.endpoint = f"{url.rstrip('/')}/{database}/rpc/"
        self.database = database
        self.login_name = login
        self._password = password
        self._client = httpx.Client(timeout=timeout, headers={"Content-Type": "application/json"})
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._auth: str | None = None
        self.user_id: int | None = None
        self.logins = 0  # how many sessions were opened (a re-login after 401 adds one)

    def __repr__(self) -> str:  # the password must not leak through a debugger or a log
        return f"TrytonRpc({self.endpoint!r}, login={self.login_name!r})"

    def close(self) -> None:
        self._client.close()

    def login(self) -> None:
        """``common.db.login``; the reply is ``[user id, session token, bus url]``."""
        params = [self.login_name, {"password": self._password}, "en"]
        reply = self._post("common.db.login", params, None, logging_in=True)
        user_id, session = int(reply[0]), str(reply[1])
        token = base64.b64encode(f"{self.login_name}:{user_id}:{session}".encode()).decode()
        with self._lock:
            self.user_id, self._auth = user_id, f"Session {token}"
            self.logins += 1

    def call(self, method: str, *params: object) -> Any:
        """Call ``method``; one fresh login when the session turns out to be stale. Resending
        is safe even for ``create``: trytond answers 401 before it dispatches anything."""
        if self._auth is None:
            self.login()
        try:
            return self._post(method, list(params), self._auth)
        except _SessionExpired:
            self.login()
            try:
                return self._post(method, list(params), self._auth)
            except _SessionExpired:
                raise PermanentErpError(
                    f"Tryton refused a fresh session for {method} (HTTP 401): check the "
                    f"user's access rights on database {self.database!r}"
                ) from None

    def _post(self, method: str, params: list[Any], auth: str | None, **kw: bool) -> Any:
        body = dumps({"id": next(self._ids), "method": method, "params": params})
        headers = {"Authorization": auth} if auth else {}
        try:
            response = self._client.post(self.endpoint, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise ErpUnavailableError(f"Tryton timed out on {method}: {exc}") from exc
        except httpx.HTTPError as exc:
            raise ErpUnavailableError(f"Tryton unreachable at {self.endpoint}: {exc}") from exc
        _check_status(response, method, logging_in=kw.get("logging_in", False))
        try:
            reply = loads(response.content)
        except ValueError as exc:
            raise ErpUnavailableError(f"Tryton sent malformed JSON for {method}") from exc
        if not isinstance(reply, dict):
            raise ErpUnavailableError(f"Tryton sent an unexpected reply for {method}")
        if reply.get("error") is not None:
            raise _classify(reply["error"], method)
        return reply.get("result")


class _SessionExpired(Exception):
    """HTTP 401 on a model call: internal signal to log in again."""


def _check_status(response: httpx.Response, method: str, *, logging_in: bool) -> None:
    status = response.status_code
    if status == 200:
        return
    if status == 401:
        if logging_in:
            raise PermanentErpError("Tryton refused the login: check the login and password")
        raise _SessionExpired
    if status == 429:
        raise RateLimitedError("Tryton throttled the login (HTTP 429)", retry_after=60.0)
    if status == 503:
        raise ErpUnavailableError(f"Tryton database busy (HTTP 503, lock contention) on {method}")
    if status == 404 and logging_in:
        raise ErpUnavailableError(
            "Tryton does not know that database (HTTP 404); trytond 8.2 only logs in to "
            "databases it loaded at start: start it with -d DATABASE"
        )
    if status >= 500 or status == 408:
        raise ErpUnavailableError(f"Tryton answered HTTP {status} on {method}")
    raise PermanentErpError(f"Tryton answered HTTP {status} on {method}")


def _classify(error: object, method: str) -> Exception:
    """Turn the ``error`` member of a reply into the exception the engine acts on."""
    if isinstance(error, list | tuple) and error:
        kind, args = error[0], error[1] if len(error) > 1 else None
        parts = list(args) if isinstance(args, list | tuple) else [args]
        if kind == "UserError":
            text = " - ".join(str(p) for p in parts[:2] if p)
            return TrytonUserError(f"Tryton refused {method}: {text}")
        if kind == "UserWarning":
            name = str(parts[0]) if parts else ""
            text = " - ".join(str(p) for p in parts[1:3] if p)
            return TrytonWarning(f"Tryton asks to confirm {name!r} on {method}: {text}", name)
        if kind == "ConcurrencyException":
            return TransientErpError(f"Tryton: concurrent change during {method}")
        if kind == "LoginException":
            return PermanentErpError("Tryton asks for another login factor; not supported")
        first_line = str(kind).strip().splitlines()[0] if str(kind).strip() else "error"
        return PermanentErpError(f"Tryton failed on {method}: {first_line[:300]}")
    return PermanentErpError(f"Tryton failed on {method}: {str(error)[:300]}")
