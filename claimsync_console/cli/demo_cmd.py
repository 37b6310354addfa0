"""``claimsync demo``: a fresh database seeded from ``sample_data/``, then the status.

The README's first command ends here: it runs the engine once against the embedded ledger,
prints the status, and on a terminal opens the console on the demo database. The demo keeps to
its own folder (never the user's real database), so it ends with the line that points the other
commands at it; the ledger next to that database follows (``Settings.resolved_ledger_path``).
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from claimsync_console.cli.common import fail, friendly_errors, settings_for

SAMPLE_CLAIMS = 300
SAMPLE_SEED = 42


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def find_samples(explicit: Path | None, fallback: Path) -> Path:
    """``./sample_data`` from a checkout; otherwise generate the same set (seed 42)."""
    if explicit is not None:
        if not explicit.is_dir():
            fail(f"sample folder {explicit} does not exist")
        return explicit
    for candidate in (
        Path.cwd() / "sample_data",
        Path(__file__).resolve().parents[2] / "sample_data",
    ):
        if (candidate / "manifest.json").is_file():
            return candidate
    from claimsync_console.engine.samplegen import generate

    generate(SAMPLE_CLAIMS, SAMPLE_SEED, fallback)
    return fallback


@friendly_errors
def demo(
    samples: Annotated[
        Path | None, typer.Option("--samples", help="Folder of X12 files to load.")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir", help="Where the demo database goes (default: data folder/demo)."
        ),
    ] = None,
    no_console: Annotated[
        bool,
        typer.Option("--no-console", help="Print the status instead of opening the console."),
    ] = False,
) -> None:
    """Create a fresh SQLite database and ledger, load the sample data, post it, then open the
    console on it (on a terminal; otherwise, or with --no-console, print the status)."""
    from claimsync_console.cli.status_cmd import print_summary
    from claimsync_console.engine.ingest import ingest_paths
    from claimsync_console.engine.pipeline import process_all
    from claimsync_console.engine.rules import load_rules
    from claimsync_console.engine.runtime import open_adapter, open_store
    from claimsync_console.engine.samples import sample_files
    from claimsync_console.engine.status import store_summary
    from claimsync_console.engine.worker import drain

    settings = settings_for()
    folder = (data_dir or settings.data_dir / "demo").resolve()
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    source = find_samples(samples, folder / "sample_data")
    store = open_store(f"sqlite+pysqlite:///{folder / 'claimsync.sqlite'}")
    try:
        results = ingest_paths(store.sessions, sample_files(source))
        process_all(store.sessions, load_rules(settings.resolved_rules_path))
        ledger = open_adapter("ledger", folder / "ledger.sqlite")
        report = drain(store.sessions, ledger, worker_id="demo", once=True)
        with store.sessions() as session:
            summary = store_summary(session)
    finally:
        store.dispose()
    loaded = sum(r.status == "loaded" for r in results)
    typer.echo(f"demo database: {folder / 'claimsync.sqlite'}")
    typer.echo(f"loaded {loaded} of {len(results)} sample files from {source}")
    typer.echo(
        f"posted {report.posted} journal entries ({report.posted_amount}) to the embedded "
        f"ledger {folder / 'ledger.sqlite'}"
    )
    print_summary(summary)
    if not no_console and sys.stdin.isatty() and sys.stdout.isatty():
        from claimsync_console.cli.console_cmd import open_console

        open_console(
            replace(settings, database_url=store.url, ledger_path=str(folder / "ledger.sqlite"))
        )
    print_next_step(folder / "claimsync.sqlite", ledger_configured=bool(settings.ledger_path))


def demo_database_url(database: Path) -> str:
    """``sqlite:////abs/path/claimsync.sqlite``: absolute, so it works from any folder."""
    return f"sqlite:///{database.resolve()}"


def print_next_step(database: Path, *, ledger_configured: bool = False) -> None:
    """Printed last (after the console closes, or after the status): without it the next
    command, ``claimsync items list``, reads the default database and finds nothing. The
    ledger next to the database follows by default; a configured ``ledger_path`` would not,
    so then its line is printed too."""
    import shlex

    typer.echo("\nThe demo has its own database. To point the other commands at it, run:")
    typer.echo(f"  export CLAIMSYNC_DATABASE_URL={shlex.quote(demo_database_url(database))}")
    if ledger_configured:
        ledger = shlex.quote(str(database.resolve().parent / "ledger.sqlite"))
        typer.echo(f"  export CLAIMSYNC_LEDGER_PATH={ledger}")
