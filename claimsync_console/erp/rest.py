"""A generic JSON-over-HTTP ERP adapter: one adapter for any ERP that speaks plain REST.

Every posting carries an ``Idempotency-Key`` header (and the key in its body), so the adapter
may retry a POST whose reply was lost: the ERP answers the second one with the first one's
reference. That is what makes retrying 5xx replies, timeouts and dropped connections inside a
call safe, and it is why a malformed reply to a POST is *transient*: the posting may well have
happened, and the retry finds out.

Classification, which is all the outbox reads (see ``erp.base``): 429 is
:class:`RateLimitedError` carrying the ERP's ``Retry-After`` (the outbox schedules the retry no
sooner; the adapter does not sleep on it, so a worker thread is never parked for minutes); 5xx,
408, timeouts and connection failures are :class:`ErpUnavailableError` after ``max_retries``
quick retries; 4xx are permanent, mapped to the precise error class by the reply's error code.

The wire format is in ``erp.rest_wire`` and ``docs/adapters.md``; ``erp.sandbox`` serves it.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from claimsync_console.domain.journal import JournalEntry
from claimsync_console.erp import base
from claimsync_console.erp.base import (
    AdapterCapabilities,
    AdapterConfigError,
    AdapterHealth,
    AdapterOption,
    ErpAdapter,
    ErpError,
    ErpUnavailableError,
    InvalidEntryError,
    PermanentErpError,
    PostedEntry,
    PostingResult,
    RateLimitedError,
    validate_entry,
)
from claimsync_console.erp.rest_wire import entry_to_wire, parse_retry_after, posted_from_wire

MAX_BATCH = 100
AUTH_MODES = ("none", "bearer", "header")


def _error_classes() -> dict[str, type[ErpError]]:
    """Error code on the wire -> the class the engine classifies; unknown codes fall back on
    the HTTP status."""
    found: dict[str, type[ErpError]] = {}
    for value in vars(base).values():
        if isinstance(value, type) and issubclass(value, ErpError):
            found[value.code] = value
    return found


ERROR_CLASSES = _error_classes()


# --------------------------------------------------------------------------- the adapter

_RETRYABLE_EXCEPTIONS = (httpx.TransportError,)  # connect/read/write errors, timeouts, drops


class RestAdapter(ErpAdapter):
    """Posts journal entries to ``base_url`` as JSON; see the module docstring for the rules."""

    name: ClassVar[str] = "rest"
    capabilities: ClassVar[AdapterCapabilities] = AdapterCapabilities(
        supports_reversal=True,
        supports_batch=True,
        supports_idempotency_keys=True,
        supports_periods=True,
        supports_cost_centres=True,
        max_batch_size=MAX_BATCH,
    )
    options: ClassVar[tuple[AdapterOption, ...]] = (
        AdapterOption(
            "base_url",
            str,
            default="http://127.0.0.1:8765",
            help="root URL of the ERP's API (the default is `claimsync erp-sandbox serve`)",
        ),
        AdapterOption("entries_path", str, default="/entries", help="POST here to post"),
        AdapterOption(
            "entry_path", str, default="/entries/{ref}", help="GET here to read an entry back"
        ),
        AdapterOption(
            "reverse_path", str, default="/entries/{ref}/reverse", help="POST here to reverse"
        ),
        AdapterOption(
            "batch_path",
            str,
            default="/entries/batch",
            help="POST several entries at once; empty posts them one by one",
        ),
        AdapterOption("health_path", str, default="/health", help="GET here for the probe"),
        AdapterOption("auth", str, default="none", choices=AUTH_MODES, help="how to send token"),
        AdapterOption(
            "auth_header",
            str,
            default="X-Api-Key",
            help="header that carries the token when auth = 'header'",
        ),
        AdapterOption(
            "token",
            str,
            secret=True,
            help="API token; from the environment or token_file only, never the config file",
        ),
        AdapterOption("token_file", str, default="", help="file holding the API token"),
        AdapterOption("timeout", float, default=10.0, help="seconds to wait for a reply"),
        AdapterOption("connect_timeout", float, default=3.0, help="seconds to connect"),
        AdapterOption(
            "max_retries", int, default=2, help="quick retries of 5xx/timeouts within one call"
        ),
        AdapterOption(
            "retry_backoff", float, default=0.05, help="first quick-retry pause, doubling"
        ),
        AdapterOption("max_connections", int, default=16, help="connection pool size"),
        AdapterOption("concurrency", int, default=8, help="requests in flight at most"),
        AdapterOption("verify_tls", bool, default=True, help="check the server's certificate"),
    )

    def __init__(self, options: Mapping[str, object] | None = None) -> None:
        super().__init__(options)
        self.base_url = self.option_str("base_url").rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise AdapterConfigError(f"base_url {self.base_url!r} is not an http(s) URL")
        for name in ("max_retries", "max_connections", "concurrency"):
            if int(self._int(name)) < (0 if name == "max_retries" else 1):
                raise AdapterConfigError(f"option {name!r} is too small")
        self._headers = {"Accept": "application/json", **self._auth_headers()}
        self._limit = threading.BoundedSemaphore(self._int("concurrency"))
        connections = self._int("max_connections")
        self._client = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(
                self.option_float("timeout"), connect=self.option_float("connect_timeout")
            ),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            verify=bool(self.settings["verify_tls"]),
            headers=self._headers,
        )

    def _int(self, name: str) -> int:
        value = self.settings[name]
        return value if isinstance(value, int) else 0

    def _auth_headers(self) -> dict[str, str]:
        mode = self.option_str("auth")
        token = self.option_str("token")
        path = self.option_str("token_file")
        if token and path:
            raise AdapterConfigError("give either token or token_file, not both")
        if path:
            try:
                token = Path(path).expanduser().read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise AdapterConfigError(f"token_file {path}: {exc.strerror or exc}") from None
            self.settings["token"] = token  # shown masked by redacted_settings()
        if mode == "none":
            return {}
        if not token:
            raise AdapterConfigError(f"auth = {mode!r} needs a token (environment or token_file)")
        if mode == "bearer":
            return {"Authorization": f"Bearer {token}"}
        return {self.option_str("auth_header"): token}

    # ------------------------------------------------------------------ the ERP API

    def post_entry(self, entry: JournalEntry) -> PostingResult:
        validate_entry(entry)  # before any I/O: an unbalanced entry is never sent
        reply = self._send(
            "POST",
            self.option_str("entries_path"),
            json_body=entry_to_wire(entry),
            idempotency_key=entry.idempotency_key,
        )
        return _result(reply, entry.idempotency_key)

    def post_entries(self, entries: Iterable[JournalEntry]) -> list[PostingResult]:
        """One request per ``MAX_BATCH`` entries when the ERP has a batch endpoint. The ERP
        stops at the first refusal; the results before it stand, and that error is raised."""
        todo = list(entries)
        for entry in todo:
            validate_entry(entry)
        path = self.option_str("batch_path")
        if not path:
            return [self.post_entry(entry) for entry in todo]
        results: list[PostingResult] = []
        for start in range(0, len(todo), MAX_BATCH):
            results.extend(self._post_batch(path, todo[start : start + MAX_BATCH]))
        return results

    def _post_batch(self, path: str, chunk: list[JournalEntry]) -> list[PostingResult]:
        keys = [entry.idempotency_key for entry in chunk]
        batch_key = "batch-" + hashlib.sha256("\n".join(keys).encode()).hexdigest()[:32]
        reply = self._send(
            "POST",
            path,
            json_body={"entries": [entry_to_wire(entry) for entry in chunk]},
            idempotency_key=batch_key,
        )
        items = reply.get("results") if isinstance(reply, dict) else None
        if not isinstance(items, list):
            raise ErpUnavailableError("ERP batch reply has no results list")
        results: list[PostingResult] = []
        for key, item in zip(keys, items, strict=False):
            if isinstance(item, dict) and "error" in item:
                raise _error_from_body(item, 422)
            results.append(_result(item, key))
        if len(results) < len(chunk):
            raise ErpUnavailableError(f"ERP answered {len(results)} of {len(chunk)} entries")
        return results

    def reverse_entry(
        self, erp_reference: str, idempotency_key: str, reversal_date: date
    ) -> PostingResult:
        if not idempotency_key.strip():
            raise InvalidEntryError("reversal has an empty idempotency key")
        reply = self._send(
            "POST",
            self._entry_path("reverse_path", erp_reference),
            json_body={
                "idempotency_key": idempotency_key,
                "reversal_date": reversal_date.isoformat(),
            },
            idempotency_key=idempotency_key,
        )
        return _result(reply, idempotency_key)

    def get_entry(self, erp_reference: str) -> PostedEntry | None:
        reply = self._send("GET", self._entry_path("entry_path", erp_reference), missing_ok=True)
        if reply is None:
            return None
        try:
            return posted_from_wire(reply)
        except (KeyError, TypeError, ValueError) as exc:
            raise ErpUnavailableError(f"ERP sent an unreadable entry: {exc}") from exc

    def health(self) -> AdapterHealth:
        started = time.perf_counter()
        try:
            reply = self._send("GET", self.option_str("health_path"), retries=0)
        except ErpError as exc:
            return AdapterHealth(False, f"{self.base_url}: {exc}", time.perf_counter() - started)
        latency = time.perf_counter() - started
        detail = reply.get("detail", "ok") if isinstance(reply, dict) else "ok"
        return AdapterHealth(True, f"{self.base_url}: {detail}", latency)

    def close(self) -> None:
        self._client.close()

    # ------------------------------------------------------------------ HTTP

    def _entry_path(self, option: str, erp_reference: str) -> str:
        return self.option_str(option).replace("{ref}", quote(erp_reference, safe=""))

    def _send(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        idempotency_key: str | None = None,
        missing_ok: bool = False,
        retries: int | None = None,
    ) -> Any:
        """One logical call: quick bounded retries of transient failures, then classify."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else {}
        body = None if json_body is None else json.dumps(json_body).encode()
        if body is not None:
            headers["Content-Type"] = "application/json"
        attempts = 1 + (self._int("max_retries") if retries is None else retries)
        pause = self.option_float("retry_backoff")
        for attempt in range(1, attempts + 1):
            try:
                return self._once(method, path, body, headers, missing_ok)
            except ErpUnavailableError:
                if attempt == attempts:
                    raise
            time.sleep(pause)
            pause *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str], missing: bool
    ) -> Any:
        with self._slot():
            try:
                response = self._client.request(method, path, content=body, headers=headers)
            except httpx.TimeoutException as exc:
                raise ErpUnavailableError(f"ERP timed out ({type(exc).__name__})") from exc
            except _RETRYABLE_EXCEPTIONS as exc:
                raise ErpUnavailableError(f"ERP unreachable ({type(exc).__name__})") from exc
        return _classify(response, missing)

    @contextmanager
    def _slot(self) -> Iterator[None]:
        """The concurrency limit: threads beyond it wait here, not in the ERP's queue."""
        with self._limit:
            yield


def _classify(response: httpx.Response, missing_ok: bool) -> Any:
    status = response.status_code
    if status == 404 and missing_ok:
        return None
    if status == 429:
        wait = parse_retry_after(response.headers.get("Retry-After"))
        raise RateLimitedError("ERP rate limited the request (429)", retry_after=wait)
    if status >= 500 or status == 408:
        raise ErpUnavailableError(f"ERP answered {status}")
    if 300 <= status < 400:  # not followed: a POST must not silently land somewhere else
        where = response.headers.get("Location", "?")
        raise PermanentErpError(f"ERP redirected ({status}) to {where}; fix base_url")
    try:
        payload = response.json()
    except ValueError:
        if status < 400:  # the call may have worked; a retry with the same key finds out
            raise ErpUnavailableError(f"ERP answered {status} with malformed JSON") from None
        payload = None
    if status >= 400:
        raise _error_from_body(payload, status)
    return payload


def _error_from_body(payload: Any, status: int) -> ErpError:
    error = payload.get("error") if isinstance(payload, dict) else None
    code = str(error.get("code", "")) if isinstance(error, dict) else ""
    message = str(error.get("message", "")) if isinstance(error, dict) else ""
    message = message or f"ERP refused the request ({status})"
    if status in (401, 403):
        return PermanentErpError(f"ERP refused our credentials ({status}); check the token")
    cls = ERROR_CLASSES.get(code)
    if cls is None or cls.code in ("erp_error", "transient", "unavailable", "rate_limited"):
        return PermanentErpError(message)
    if issubclass(cls, PermanentErpError):
        return cls(message)
    return PermanentErpError(message)


def _result(reply: Any, key: str) -> PostingResult:
    if not isinstance(reply, dict) or not isinstance(reply.get("erp_reference"), str):
        raise ErpUnavailableError("ERP reply has no erp_reference")
    return PostingResult(reply["erp_reference"], bool(reply.get("created", True)), key)
