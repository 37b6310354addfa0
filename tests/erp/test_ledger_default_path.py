"""Where the embedded ledger lives when ``ledger_path`` is empty: next to the SQLite database.

A store and the ledger it posted to belong together: pointing ``CLAIMSYNC_DATABASE_URL`` at the
demo's database must post into the demo's ledger, not into a new ``ledger.sqlite`` in the data
folder that nothing else reads. For a server database there is no file to sit next to, so the
data folder is kept (docs/configuration.md, docs/decisions.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from claimsync_console.settings import load_settings, sqlite_file


def ledger_for(tmp_path: Path, **env: str) -> Path:
    return load_settings({"CLAIMSYNC_DATA_DIR": str(tmp_path / "data"), **env}).resolved_ledger_path


def test_default_database_keeps_the_ledger_in_the_data_folder(tmp_path: Path) -> None:
    assert ledger_for(tmp_path) == tmp_path / "data" / "ledger.sqlite"


def test_an_sqlite_database_elsewhere_takes_its_ledger_along(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo' / 'claimsync.sqlite'}"
    assert ledger_for(tmp_path, CLAIMSYNC_DATABASE_URL=url) == tmp_path / "demo" / "ledger.sqlite"
    driver = f"sqlite+pysqlite:///{tmp_path / 'b' / 'x.db'}?timeout=5"
    assert ledger_for(tmp_path, CLAIMSYNC_DATABASE_URL=driver) == tmp_path / "b" / "ledger.sqlite"


def test_a_server_database_keeps_the_data_folder(tmp_path: Path) -> None:
    url = "postgresql+psycopg://claims@db.example/claimsync"
    assert ledger_for(tmp_path, CLAIMSYNC_DATABASE_URL=url) == tmp_path / "data" / "ledger.sqlite"


def test_an_explicit_ledger_path_wins(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo' / 'claimsync.sqlite'}"
    explicit = str(tmp_path / "books.sqlite")
    got = ledger_for(tmp_path, CLAIMSYNC_DATABASE_URL=url, CLAIMSYNC_LEDGER_PATH=explicit)
    assert got == Path(explicit)


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:////abs/dir/x.sqlite", "/abs/dir/x.sqlite"),
        ("sqlite+pysqlite:///rel/x.db", "rel/x.db"),
        ("sqlite:///with%20space/x.db?timeout=3", "with space/x.db"),
        ("SQLite:////abs/x.db", "/abs/x.db"),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("sqlite:///file:x.db?uri=true", None),
        ("postgresql+psycopg://u@h/db", None),
        ("", None),
    ],
)
def test_sqlite_file_reads_the_path_as_sqlalchemy_does(url: str, path: str | None) -> None:
    assert sqlite_file(url) == (None if path is None else Path(path))
    if path is not None:
        from sqlalchemy.engine import make_url

        assert make_url(url).database == path
