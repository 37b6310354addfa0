"""The sandbox ERP: the embedded ledger behind a real HTTP API, with faults on demand.

``claimsync erp-sandbox serve`` runs it, so a user can point the engine's ``rest`` adapter at a
network ERP without owning one, and the reliability tests have a real server to break. It
speaks exactly the REST adapter's default endpoints (see ``docs/adapters.md``)::

    GET  /health                    POST /entries            (Idempotency-Key required)
    GET  /entries/{ref}             POST /entries/batch      {"entries": [...]}
    POST /entries/{ref}/reverse     GET|PUT /_sandbox/faults GET /_sandbox/stats

Its ledger (``erp.sandbox_ledger``) trades power-cut durability for speed; see there why.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from claimsync_console.erp.base import (
    AlreadyReversedError,
    ErpError,
    IdempotencyConflictError,
    PostingResult,
    RateLimitedError,
    UnknownEntryError,
)
from claimsync_console.erp.rest_wire import entry_from_wire, posted_to_wire
from claimsync_console.erp.sandbox_faults import BEFORE, FaultInjector, FaultPlan, FaultPlanError
from claimsync_console.erp.sandbox_ledger import DURABILITY, SandboxLedger, open_sandbox_ledger

__all__ = ["DURABILITY", "SandboxLedger", "SandboxServer", "open_sandbox_ledger"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
_REASONS = {
    200: "OK", 201: "Created", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
    405: "Method Not Allowed", 409: "Conflict", 422: "Unprocessable Content",
    429: "Too Many Requests", 503: "Service Unavailable",
}  # fmt: skip


class _Reply(Exception):
    """Raised inside a route to answer at once."""

    def __init__(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, dict(headers or {})


def _error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _status_for(exc: ErpError) -> int:
    if isinstance(exc, RateLimitedError):
        return 429
    if exc.retryable:
        return 503
    if isinstance(exc, UnknownEntryError):
        return 404
    if isinstance(exc, IdempotencyConflictError | AlreadyReversedError):
        return 409
    return 422


class SandboxServer:
    """Owns the HTTP server, the ledger and the fault injector; ``start`` serves in a thread."""

    def __init__(
        self,
        ledger: SandboxLedger,
        *,
        host: str = DEFAULT_HOST,
        port: int = 0,
        faults: FaultPlan | None = None,
        token: str = "",
    ) -> None:
        self.ledger = ledger
        self.faults = FaultInjector(faults)
        self.token = token
        self._stats_lock = threading.Lock()
        self.requests = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.last_idempotency_key = ""
        self.httpd = _HTTPServer((host, port), _Handler)
        self.httpd.app = self
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stats(self) -> dict[str, Any]:
        with self._stats_lock:
            counters = {
                "requests": self.requests,
                "in_flight": self.in_flight,
                "peak_in_flight": self.peak_in_flight,
                "last_idempotency_key": self.last_idempotency_key,
            }
        return {
            **counters,
            "faults": dict(self.faults.counts),
            "entries": self.ledger.entry_count(),
        }

    def reset_stats(self) -> None:
        with self._stats_lock:
            self.requests = self.peak_in_flight = 0
            self.faults.counts = dict.fromkeys(self.faults.counts, 0)

    @contextmanager
    def tracked(self) -> Iterator[None]:
        with self._stats_lock:
            self.requests += 1
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            yield
        finally:
            with self._stats_lock:
                self.in_flight -= 1

    # ------------------------------------------------------------------ routes

    def route(self, method: str, path: str, body: Any, key: str) -> tuple[int, Any]:
        parts = [unquote(p) for p in path.split("?", 1)[0].strip("/").split("/")]
        if parts == ["health"] and method == "GET":
            return 200, {"ok": True, "detail": f"sandbox ERP, {self.ledger.entry_count()} entries"}
        if parts == ["entries"] and method == "POST":
            return self._post(body, key)
        if parts == ["entries", "batch"] and method == "POST":
            return 200, {"results": self._batch(body)}
        if len(parts) == 2 and parts[0] == "entries" and method == "GET":
            posted = self.ledger.get_entry(parts[1])
            if posted is None:
                raise _Reply(404, _error_body("unknown_entry", f"no entry {parts[1]!r}"))
            return 200, posted_to_wire(posted)
        if len(parts) == 3 and parts[0] == "entries" and parts[2] == "reverse":
            if method != "POST":
                raise _Reply(405, _error_body("method", "use POST"))
            return self._reverse(parts[1], body, key)
        raise _Reply(404, _error_body("not_found", f"no route {method} {path}"))

    def _post(self, body: Any, key: str) -> tuple[int, Any]:
        entry = _entry(body)
        if key != entry.idempotency_key:
            raise _Reply(400, _error_body("bad_request", "Idempotency-Key must match the body"))
        result = self.ledger.post_entry(entry)
        return (201 if result.created else 200), _result_body(result)

    def _batch(self, body: Any) -> list[dict[str, Any]]:
        items = body.get("entries") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise _Reply(400, _error_body("bad_request", 'expected {"entries": [...]}'))
        entries, unreadable = [], None
        for item in items:
            try:
                entries.append(_entry(item))
            except _Reply as reply:
                unreadable = reply.body
                break
        results: list[dict[str, Any]] = []
        for outcome in self.ledger.post_many(entries) if entries else []:
            if isinstance(outcome, ErpError):
                return [*results, _error_body(outcome.code, outcome.message)]
            results.append(_result_body(outcome))
        return results if unreadable is None else [*results, unreadable]

    def _reverse(self, reference: str, body: Any, key: str) -> tuple[int, Any]:
        try:
            on = date.fromisoformat(str(body["reversal_date"]))
            body_key = str(body["idempotency_key"])
        except (KeyError, TypeError, ValueError) as exc:
            raise _Reply(400, _error_body("bad_request", f"bad reversal: {exc}")) from None
        if key != body_key:
            raise _Reply(400, _error_body("bad_request", "Idempotency-Key must match the body"))
        result = self.ledger.reverse_entry(reference, key, on)
        return (201 if result.created else 200), _result_body(result)

    def control(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if path.startswith("/_sandbox/stats"):
            if method == "DELETE":
                self.reset_stats()
            return 200, self.stats()
        if path.startswith("/_sandbox/faults"):
            if method == "PUT":
                try:
                    self.faults.set_plan(FaultPlan.from_json(body))
                except (FaultPlanError, TypeError) as exc:
                    raise _Reply(400, _error_body("bad_request", str(exc))) from None
            return 200, self.faults.plan.to_json()
        raise _Reply(404, _error_body("not_found", f"no route {method} {path}"))


def _entry(body: Any) -> Any:
    try:
        return entry_from_wire(body)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _Reply(422, _error_body("invalid_entry", f"unreadable entry: {exc}")) from None


def _result_body(result: PostingResult) -> dict[str, Any]:
    return {
        "erp_reference": result.erp_reference,
        "created": result.created,
        "idempotency_key": result.idempotency_key,
    }


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    app: SandboxServer


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive; every reply is one ``send`` (status, headers and body together)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 120
    server: _HTTPServer

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: entries carry claim references, and the console is the place to look."""

    def _serve(self, method: str) -> None:
        app = self.server.app
        try:
            body = self._read_body()
            self._authorise(app)
            if self.path.startswith("/_sandbox/"):
                status, payload = app.control(method, self.path, body)
                self._send(status, payload)
                return
            with app.tracked():  # left before the reply is written: the client may reuse
                fault, plan, status, payload = self._serve_api(app, method, body)
            self._after_fault(fault, plan, status, payload)
        except _Reply as reply:
            self._send(reply.status, reply.body, reply.headers)

    def _serve_api(
        self, app: SandboxServer, method: str, body: Any
    ) -> tuple[str, FaultPlan, int, Any]:
        plan = app.faults.plan
        if plan.latency:
            time.sleep(plan.latency)
        fault = app.faults.draw()
        if fault in BEFORE:
            self._before_fault(fault, plan)
        key = self.headers.get("Idempotency-Key", "")
        if method == "POST":
            if not key:
                raise _Reply(400, _error_body("bad_request", "Idempotency-Key header missing"))
            with app._stats_lock:
                app.last_idempotency_key = key
        try:
            status, payload = app.route(method, self.path, body, key)
        except ErpError as exc:
            headers = {}
            if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
                headers["Retry-After"] = f"{exc.retry_after:g}"
            raise _Reply(_status_for(exc), _error_body(exc.code, exc.message), headers) from None
        return fault, plan, status, payload

    def _before_fault(self, fault: str, plan: FaultPlan) -> None:
        if fault == "error":
            raise _Reply(503, _error_body("unavailable", "sandbox fault: error"))
        raise _Reply(
            429,
            _error_body("rate_limited", "sandbox fault: rate limit"),
            {"Retry-After": f"{plan.retry_after:g}"},
        )

    def _after_fault(self, fault: str, plan: FaultPlan, status: int, payload: Any) -> None:
        if fault == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault == "malformed":
            self._send_raw(200, b'{"erp_reference": "JE-0000', {})
            return
        if fault == "timeout":
            time.sleep(plan.hang)
        self._send(status, payload)

    def _read_body(self) -> Any:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise _Reply(400, _error_body("bad_request", "bad Content-Length")) from None
        if length <= 0:
            return None
        raw = self.rfile.read(length)
        try:
            return json.loads(raw)
        except ValueError:
            raise _Reply(400, _error_body("bad_request", "body is not JSON")) from None

    def _authorise(self, app: SandboxServer) -> None:
        if not app.token:
            return
        offered = {self.headers.get("Authorization", ""), self.headers.get("X-Api-Key", "")}
        if f"Bearer {app.token}" not in offered and app.token not in offered:
            raise _Reply(401, _error_body("unauthorised", "missing or wrong API token"))

    def _send(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        self._send_raw(status, json.dumps(payload).encode(), headers or {})

    def _send_raw(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        lines = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        if self.close_connection:
            lines.append("Connection: close")
        try:
            self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        except OSError:  # the client gave up (a timeout fault, say); nothing left to tell it
            self.close_connection = True
