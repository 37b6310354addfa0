"""``claimsync sample generate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from claimsync_console.cli.common import fail, friendly_errors


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)


@friendly_errors
def generate(
    claims: Annotated[int, typer.Option("--claims", min=1, help="How many claims to bill.")] = 300,
    seed: Annotated[int, typer.Option("--seed", help="The same seed gives the same files.")] = 42,
    out: Annotated[Path, typer.Option("--out", help="Folder to write into.")] = Path("sample_data"),
) -> None:
    """Write matching 837P/837I, 277CA and 835 files, deterministic for a seed."""
    from claimsync_console.engine.samplegen import generate as run

    try:
        summary = run(claims, seed, out)
    except (OSError, ValueError) as error:
        fail(f"cannot generate into {out}: {error}")
    typer.echo(
        f"wrote {len(summary.files)} files for {summary.claims} claims (seed {summary.seed}) "
        f"to {summary.out_dir}; manifest: {summary.manifest_path}"
    )
