"""Real trytond servers on 127.0.0.1 for the Tryton adapter tests and benchmark.

``trytond-admin`` takes tens of seconds to install the account module, so it runs once per
test run per backend to build a template database, which is then bootstrapped (company,
chart, fiscal years, the project's accounts) through the adapter's own bootstrap helper. Each
test module gets a copy of the template (a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE``
on PostgreSQL: milliseconds) and its own trytond started with ``-d DB``: trytond 8.2 refuses
logins to a database it did not load at start.

``[database] retry = 0`` makes a locked database answer 503 after one attempt instead of six;
the 503 test would otherwise wait half a minute.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from claimsync_console.erp import tryton_bootstrap as bootstrap_module
from claimsync_console.erp.tryton import TrytonAdapter
from claimsync_console.erp.tryton_bootstrap import bootstrap_books
from claimsync_console.erp.tryton_rpc import TrytonRpc

ADMIN = "admin"
# Fixed, because a kept template (see template_cache_dir) outlives the run that built it:
# a random one would lock the next run out. It only guards servers on 127.0.0.1, and
# the tests still check that it never shows up in output, logs or reprs.
ADMIN_PASSWORD = "cs-" + hashlib.sha256(b"claimsync tryton test admin").hexdigest()[:24]
TEMPLATE_PREFIX = "cs_tryton_tpl_"
COMPANY = "ClaimSync Test Hospital"
# 2024 holds the contract's dates; the current year is where Tryton dates a reversal whose
# original period is closed.
YEARS = (2024, datetime.now(UTC).year)
_BIN = Path(sys.executable).parent


def template_cache_dir() -> Path:
    """Where built SQLite templates are kept: ``CLAIMSYNC_TEST_CACHE`` or the user's cache."""
    from platformdirs import user_cache_dir

    root = os.environ.get("CLAIMSYNC_TEST_CACHE") or user_cache_dir("claimsync-tests")
    path = Path(root) / "tryton-template"
    path.mkdir(parents=True, exist_ok=True)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_uri(sqlalchemy_url: str) -> str:
    """``postgresql+psycopg://u@h:p/db`` -> ``postgresql://u@h:p/`` (trytond names the db)."""
    parts = urlsplit(sqlalchemy_url)
    return f"postgresql://{parts.netloc}/"


@dataclass
class RunningTryton:
    """One trytond serving one database; ``adapter()`` builds a TrytonAdapter on it."""

    backend: str
    url: str
    database: str
    password_file: Path
    db_file: Path | None  # the SQLite file, for the lock-contention test
    extra_urls: tuple[str, ...] = ()  # more trytond processes on the same database

    def options(self, **extra: object) -> dict[str, object]:
        return {
            "url": ",".join((self.url, *self.extra_urls)),
            "database": self.database,
            "login": ADMIN,
            "password_file": str(self.password_file),
            "company": COMPANY,
            **extra,
        }

    def adapter(self, **extra: object) -> TrytonAdapter:
        return TrytonAdapter(self.options(**extra))

    def admin_rpc(self) -> TrytonRpc:
        password = self.password_file.read_text().strip()
        return TrytonRpc(self.url, self.database, ADMIN, password)


class TrytonTemplates:
    """Builds each backend's template once, then serves copies of it."""

    def __init__(
        self, workdir: Path, postgres_url: str | None, cache_dir: Path | None = None
    ) -> None:
        self.workdir = workdir
        self.cache_dir = cache_dir
        self.db_dir = workdir / "db"
        self.db_dir.mkdir(parents=True, exist_ok=True)
        self.password_file = workdir / "admin-password"
        self.password_file.write_text(ADMIN_PASSWORD + "\n")
        self.password_file.chmod(0o600)
        self.postgres_url = postgres_url
        self.suffix = uuid.uuid4().hex[:8]
        self._templates: dict[str, Future[str]] = {}
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="tryton-template")
        self._lock = threading.Lock()
        self._pg_databases: list[str] = []

    # ------------------------------------------------------------------ configuration

    def _uri(self, backend: str) -> str:
        if backend == "sqlite":
            return "sqlite://"
        assert self.postgres_url is not None
        return postgres_uri(self.postgres_url)

    def _config(self, backend: str, port: int) -> Path:
        path = self.workdir / f"trytond-{backend}-{port}.conf"
        lines = ["[database]", f"uri = {self._uri(backend)}", "retry = 0"]
        if backend == "sqlite":
            lines.append(f"path = {self.db_dir}")
        lines += ["[web]", f"listen = 127.0.0.1:{port}"]
        path.write_text("\n".join(lines) + "\n")
        return path

    # ------------------------------------------------------------------ templates

    def template(self, backend: str) -> str:
        """The bootstrapped template's database name, built at most once per run and kept
        between runs (see ``_digest``): trytond-admin costs tens of seconds per backend."""
        return self._future(backend).result()

    def prefetch(self, *backends: str) -> None:
        """Start building templates in the background: the two backends' trytond-admin runs
        overlap instead of adding up."""
        for backend in backends:
            self._future(backend)

    def _future(self, backend: str) -> Future[str]:
        with self._lock:
            if backend not in self._templates:
                build = self._cached_sqlite if backend == "sqlite" else self._cached_postgres
                self._templates[backend] = self._pool.submit(build)
            return self._templates[backend]

    def _build(self, backend: str, name: str) -> None:
        self._create_empty(backend, name)
        self._admin(backend, name)
        with self.serve_database(backend, name) as server:
            rpc = server.admin_rpc()
            try:
                bootstrap_books(rpc, company_name=COMPANY, years=YEARS)
            finally:
                rpc.close()

    def _digest(self, backend: str) -> str:
        """Names a template by what it was built from, so a new trytond or a changed
        bootstrap builds afresh instead of reusing a stale one."""
        digest = hashlib.sha256(backend.encode())
        for dist in ("trytond", "trytond-account", "trytond-company", "trytond-party"):
            digest.update(f"{dist}={version(dist)};".encode())
        digest.update(f"{COMPANY};{YEARS};{ADMIN_PASSWORD}".encode())
        digest.update(Path(bootstrap_module.__file__ or "").read_bytes())
        return digest.hexdigest()[:16]

    def _cached_sqlite(self) -> str:
        """SQLite: the built file is kept in pytest's cache folder."""
        name = f"cs_tpl_sqlite_{self.suffix}"
        local = self.db_dir / f"{name}.sqlite"
        cached = None if self.cache_dir is None else self.cache_dir / f"{self._digest('sqlite')}"
        if cached is not None and cached.exists():
            _sqlite_copy(cached, local)
            return name
        self._build("sqlite", name)
        if cached is not None:
            partial = cached.with_suffix(f".{self.suffix}.partial")
            _sqlite_copy(local, partial)
            partial.replace(cached)  # atomic: a concurrent run never sees half a template
            for stale in cached.parent.iterdir():  # templates of older trytonds or bootstraps
                if re.fullmatch("[0-9a-f]{16}", stale.name) and stale != cached:
                    stale.unlink(missing_ok=True)
        return name

    def _cached_postgres(self) -> str:
        """PostgreSQL: the template stays on the server as ``cs_tryton_tpl_<digest>``; older
        ones are dropped. Built under a temporary name and renamed when complete, so a run
        that dies half-way never leaves a template that looks usable."""
        final = f"{TEMPLATE_PREFIX}{self._digest('postgres')}"
        existing = self._pg_names(TEMPLATE_PREFIX)
        for stale in existing - {final}:
            if re.fullmatch(TEMPLATE_PREFIX + "[0-9a-f]{16}", stale):
                self._pg_execute(f'DROP DATABASE IF EXISTS "{stale}" WITH (FORCE)')
        if final in existing:
            return final
        building = f"cs_build_{self.suffix}"
        self._build("postgres", building)
        try:
            self._pg_execute(f'ALTER DATABASE "{building}" RENAME TO "{final}"')
        except Exception:  # another run finished first: use its template, drop ours
            self._pg_execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
        self._pg_databases.remove(building)
        return final

    def _create_empty(self, backend: str, name: str, template: str | None = None) -> None:
        if backend == "sqlite":
            target = self.db_dir / f"{name}.sqlite"
            if template is None:
                target.touch()
            else:
                _sqlite_copy(self.db_dir / f"{template}.sqlite", target)
            return
        suffix = f' TEMPLATE "{template}"' if template else ""
        self._pg_execute(f'CREATE DATABASE "{name}"{suffix}')
        self._pg_databases.append(name)

    def _pg_execute(self, sql: str) -> list[tuple[object, ...]]:
        import psycopg

        assert self.postgres_url is not None
        parts = urlsplit(self.postgres_url)
        conninfo = f"postgresql://{parts.netloc}/postgres"
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            cursor = conn.execute(sql.encode())
            return cursor.fetchall() if cursor.description else []

    def _pg_names(self, prefix: str) -> set[str]:
        rows = self._pg_execute(f"SELECT datname FROM pg_database WHERE datname LIKE '{prefix}%'")
        return {str(row[0]) for row in rows}

    def _admin(self, backend: str, name: str) -> None:
        config = self._config(backend, free_port())
        env = {**os.environ, "TRYTONPASSFILE": str(self.password_file)}
        command = [
            str(_BIN / "trytond-admin"),
            *("-c", str(config), "-d", name),
            *("-u", "account", "--activate-dependencies"),
            *("--email", "admin@example.com"),
        ]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"trytond-admin failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")

    def clone(self, backend: str, name: str) -> str:
        self._create_empty(backend, name, template=self.template(backend))
        return name

    # ------------------------------------------------------------------ servers

    @contextmanager
    def serve_database(self, backend: str, name: str) -> Iterator[RunningTryton]:
        port = free_port()
        config = self._config(backend, port)
        log_path = self.workdir / f"{name}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [str(_BIN / "trytond"), "-c", str(config), "-d", name],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(url, process, log_path)
            db_file = self.db_dir / f"{name}.sqlite" if backend == "sqlite" else None
            yield RunningTryton(backend, url, name, self.password_file, db_file)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    @contextmanager
    def serve_copy(self, backend: str, label: str, processes: int = 1) -> Iterator[RunningTryton]:
        """``processes`` > 1 starts that many trytonds on the copy (for ``parallel_requests``;
        PostgreSQL: SQLite lets one writer in at a time)."""
        name = self.clone(backend, f"cs_{label}_{uuid.uuid4().hex[:8]}")
        with contextlib.ExitStack() as stack:
            servers = [
                stack.enter_context(self.serve_database(backend, name)) for _ in range(processes)
            ]
            first = servers[0]
            first.extra_urls = tuple(server.url for server in servers[1:])
            yield first

    def cleanup(self) -> None:
        self._pool.shutdown(wait=True)
        for name in reversed(self._pg_databases):
            with contextlib.suppress(Exception):  # a leftover database must not fail the run
                self._pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _sqlite_copy(source: Path, target: Path) -> None:
    """The backup API, not a file copy: trytond runs SQLite in WAL mode, so recent writes
    (the whole bootstrap) may still sit in the ``-wal`` file beside the database."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def _wait_ready(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    """Poll ``common.server.version`` until trytond answers (about a second)."""
    body = {"id": 0, "method": "common.server.version", "params": []}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"trytond exited with {process.returncode}:\n{tail}")
        try:
            if httpx.post(f"{url}/rpc/", json=body, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"trytond did not answer on {url} within 60 s")
