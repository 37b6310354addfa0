"""Fixtures for the ERP adapter tests: real trytond servers (see ``tryton_server``).

``tryton_server`` runs a module once on SQLite and once on PostgreSQL: trytond 8.2 behaves
differently on the two (SQLite posts an unbalanced move), so the contract must hold on both.
The PostgreSQL run is skipped when CLAIMSYNC_TEST_POSTGRES_URL is unset, and fails instead when
CLAIMSYNC_REQUIRE_POSTGRES=1 (CI sets both), as for the store's PostgreSQL tests.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.erp.tryton_server import RunningTryton, TrytonTemplates, template_cache_dir


@pytest.fixture(scope="session")
def tryton_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrytonTemplates]:
    """Templates built at most once per run, and kept between runs (named by trytond's version
    and the bootstrap's source, so nothing stale is reused): the SQLite file in the user's cache
    folder (shared by every clone, CI's included), the PostgreSQL one on the server."""
    pytest.importorskip("trytond", reason="trytond is not installed (pip install -e '.[test]')")
    templates = TrytonTemplates(
        tmp_path_factory.mktemp("tryton"),
        os.environ.get("CLAIMSYNC_TEST_POSTGRES_URL"),
        cache_dir=template_cache_dir(),
    )
    templates.prefetch("sqlite", *(("postgres",) if templates.postgres_url else ()))
    yield templates
    templates.cleanup()


def _require_postgres(templates: TrytonTemplates) -> None:
    if templates.postgres_url:
        return
    reason = "CLAIMSYNC_TEST_POSTGRES_URL is not set: Tryton on PostgreSQL not tested"
    if os.environ.get("CLAIMSYNC_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"CLAIMSYNC_REQUIRE_POSTGRES=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def tryton_server(
    request: pytest.FixtureRequest, tryton_templates: TrytonTemplates
) -> Iterator[RunningTryton]:
    """A trytond on a fresh copy of the bootstrapped template, shared by one test module."""
    if request.param == "postgres":
        _require_postgres(tryton_templates)
    label = request.module.__name__.rsplit(".", 1)[-1]
    with tryton_templates.serve_copy(request.param, label) as server:
        yield server


@pytest.fixture(scope="module")
def tryton_sqlite_server(
    request: pytest.FixtureRequest, tryton_templates: TrytonTemplates
) -> Iterator[RunningTryton]:
    """A trytond on SQLite only, for what needs its file (lock contention) or runs once."""
    label = request.module.__name__.rsplit(".", 1)[-1]
    with tryton_templates.serve_copy("sqlite", label) as server:
        yield server
