"""Which database and which ledger a command uses, and what it says when it cannot.

The README's path, run for real: ``claimsync demo`` seeds its own folder and prints the line
that points the other commands at it; with that line, ``items list`` sees the demo's queues,
``sync run`` posts into the demo's ledger (not a new one in the data folder) and ``adapters
check ledger`` checks that ledger. A typo in ``--database`` is refused (exit 2) instead of
creating an empty database that reads as "no items", and a PostgreSQL URL without the driver
names the extra to install.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from claimsync_console.cli.app import app
from claimsync_console.engine.samples import sample_files
from claimsync_console.erp.ledger import LedgerAdapter

SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data"

runner = CliRunner()
BASE_ENV: dict[str, str | None] = {
    "CLAIMSYNC_DATABASE_URL": None,
    "CLAIMSYNC_LEDGER_PATH": None,
    "CLAIMSYNC_CONFIG": None,
    "CLAIMSYNC_RULES_PATH": None,
    "CLAIMSYNC_ERP_ADAPTER": None,
    "CLAIMSYNC_ADAPTER_LEDGER_PATH": None,
}


def invoke(*args: str, env: Mapping[str, str | None]) -> Result:
    return runner.invoke(app, list(args), env={**BASE_ENV, **env})


@dataclass(frozen=True)
class Demo:
    data_dir: Path
    output: str
    url: str


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """``claimsync demo --no-console`` with nothing but a data folder, as the README runs it."""
    data_dir = tmp_path_factory.mktemp("data")
    result = invoke("demo", "--no-console", env={"CLAIMSYNC_DATA_DIR": str(data_dir)})
    assert result.exit_code == 0, result.output
    (line,) = [s for s in result.stdout.splitlines() if "export CLAIMSYNC_DATABASE_URL=" in s]
    name, _, url = shlex.split(line.strip())[1].partition("=")
    assert name == "CLAIMSYNC_DATABASE_URL"
    return Demo(data_dir, result.stdout, url)


def test_demo_ends_with_the_line_that_points_the_cli_at_its_database(demo: Demo) -> None:
    database = demo.data_dir.resolve() / "demo" / "claimsync.sqlite"
    assert demo.url == f"sqlite:///{database}"  # absolute: sqlite:////...
    assert demo.output.rstrip().splitlines()[-1].strip().startswith("export ")
    assert not (demo.data_dir / "claimsync.sqlite").exists()  # the real database is untouched


def test_with_the_printed_url_items_list_sees_the_demo_queues(demo: Demo) -> None:
    env = {"CLAIMSYNC_DATA_DIR": str(demo.data_dir), "CLAIMSYNC_DATABASE_URL": demo.url}
    listed = invoke("items", "list", "--queue", "denial", "--json", env=env)
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout)["count"] > 0


def test_piped_reconcile_is_not_cut_at_80_columns(demo: Demo) -> None:
    """No terminal and no COLUMNS (a pipe, a cron mail): every cell whole, not `unexplai…`.
    The demo's widest row needs more than 80 columns."""
    env = {"CLAIMSYNC_DATA_DIR": str(demo.data_dir), "CLAIMSYNC_DATABASE_URL": demo.url}
    result = invoke("reconcile", env={**env, "COLUMNS": None})
    assert result.exit_code == 0, result.output
    assert "…" not in result.stdout
    assert " unexplained " in result.stdout and "BCBEFT00000004" in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) > 80


def test_sync_and_adapters_check_use_the_ledger_next_to_the_database(tmp_path: Path) -> None:
    """The store in one folder, the data folder elsewhere: the postings land next to the store,
    where the demo (and anyone who moves the store) keeps its ledger."""
    folder, data_dir = tmp_path / "store", tmp_path / "data"
    env = {
        "CLAIMSYNC_DATA_DIR": str(data_dir),
        "CLAIMSYNC_DATABASE_URL": f"sqlite:///{folder / 'claimsync.sqlite'}",
    }
    files = [str(p) for p in sample_files(SAMPLE_DATA)]
    assert invoke("ingest", *files, env=env).exit_code == 0
    synced = invoke("sync", "run", "--once", "--json", env=env)
    assert synced.exit_code == 0, synced.output
    posted = json.loads(synced.stdout)["posted"]
    assert posted > 250
    assert LedgerAdapter({"path": str(folder / "ledger.sqlite")}).entry_count() == posted
    assert not (data_dir / "ledger.sqlite").exists()  # no second ledger that nothing reads

    checked = invoke("adapters", "check", "ledger", "--json", env=env)
    assert checked.exit_code == 0, checked.output
    report = json.loads(checked.stdout)
    assert report["options"]["path"] == str(folder / "ledger.sqlite")
    assert f"{posted} entries" in report["detail"]


def test_adapters_check_ledger_needs_no_configuration(tmp_path: Path) -> None:
    """docs/configuration.md: an empty ledger setting means the default path."""
    result = invoke("adapters", "check", "ledger", env={"CLAIMSYNC_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert f"path = {tmp_path / 'ledger.sqlite'}" in result.stdout
    explicit = tmp_path / "elsewhere" / "books.sqlite"
    configured = invoke(
        "adapters", "check", "ledger", "--json",
        env={"CLAIMSYNC_DATA_DIR": str(tmp_path), "CLAIMSYNC_LEDGER_PATH": str(explicit)},
    )  # fmt: skip
    assert configured.exit_code == 0, configured.output
    assert json.loads(configured.stdout)["options"]["path"] == str(explicit)


# -- a database that is not there ---------------------------------------------------------------

READING = (
    ("status",), ("status", "--json"), ("items", "list", "--queue", "denial"),
    ("items", "show", "1"), ("reconcile",), ("audit", "verify"), ("audit", "list"),
    ("sync", "run", "--once"), ("retry", "1"), ("ignore", "1", "--note", "x"),
    ("retry", "--queue", "dead-letter", "--yes"),
)  # fmt: skip


@pytest.mark.parametrize("command", READING, ids=" ".join)
def test_a_missing_sqlite_file_is_refused_not_created(tmp_path: Path, command: tuple[str]) -> None:
    missing = tmp_path / "nodir" / "x.sqlite"
    result = invoke(
        *command, "--database", f"sqlite:///{missing}", env={"CLAIMSYNC_DATA_DIR": str(tmp_path)}
    )
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"claimsync: no database at {missing} "
        "(run 'claimsync init' or check --database / CLAIMSYNC_DATABASE_URL)\n"
    )
    assert result.stdout == ""
    assert not missing.parent.exists()


def test_the_default_database_is_refused_too_until_init_creates_it(tmp_path: Path) -> None:
    env = {"CLAIMSYNC_DATA_DIR": str(tmp_path)}
    refused = invoke("items", "list", env=env)
    assert refused.exit_code == 2
    assert f"no database at {tmp_path / 'claimsync.sqlite'}" in refused.stderr
    assert invoke("init", env=env).exit_code == 0
    assert (tmp_path / "claimsync.sqlite").is_file()
    listed = invoke("items", "list", "--json", env=env)
    assert listed.exit_code == 0 and json.loads(listed.stdout)["count"] == 0


def test_ingest_creates_the_database_it_loads_into(tmp_path: Path) -> None:
    database = tmp_path / "new" / "x.sqlite"
    sample = next(iter(sample_files(SAMPLE_DATA)))
    result = invoke(
        "ingest", str(sample), "--database", f"sqlite:///{database}",
        env={"CLAIMSYNC_DATA_DIR": str(tmp_path)},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert database.is_file()


# -- PostgreSQL without its driver --------------------------------------------------------------

WITHOUT_PSYCOPG = """
import sys
sys.modules["psycopg"] = None  # what an install without the postgres extra looks like
sys.argv = ["claimsync", *sys.argv[1:]]
from claimsync_console.cli.app import main
main()
"""


def test_postgres_without_the_extra_names_the_extra(tmp_path: Path) -> None:
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none"  # never reached: the import fails first
    errors = tmp_path / "tmp"
    errors.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_PSYCOPG, "status", "--database", url],
        capture_output=True, text=True, timeout=60,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("CLAIMSYNC_")},
            "TMPDIR": str(errors), "CLAIMSYNC_DATA_DIR": str(tmp_path),
        },
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "PostgreSQL needs the postgres extra" in done.stderr
    assert "pip install 'claimsync-console[postgres]'" in done.stderr
    assert "pip install -e '.[postgres]'" in done.stderr
    assert "unexpected error" not in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not list(errors.glob("claimsync-errors*"))  # no traceback file: not a crash
