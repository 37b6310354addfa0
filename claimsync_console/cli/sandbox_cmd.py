"""``claimsync erp-sandbox serve``: a small real HTTP ERP to point the ``rest`` adapter at.

It binds to 127.0.0.1 unless told otherwise, and says so loudly when told otherwise: it has
no TLS, and without ``--token-env`` no authentication either.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from claimsync_console.cli.common import EXIT_OK, fail, friendly_errors, settings_for

sandbox_app = typer.Typer(
    help="A sandbox ERP over HTTP, with fault injection.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    sandbox_app.command("serve")(serve)
    app.add_typer(sandbox_app, name="erp-sandbox")


@friendly_errors
def serve(
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="0 picks a free port.")
    ] = 8765,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    ledger: Annotated[
        Path | None,
        typer.Option(
            "--ledger", help="Ledger file (default: sandbox-ledger.sqlite in the data folder)."
        ),
    ] = None,
    fault_rate: Annotated[
        float, typer.Option("--fault-rate", min=0.0, max=1.0, help="Share of API calls that fail.")
    ] = 0.0,
    faults: Annotated[
        str,
        typer.Option(
            "--faults",
            help="Fault kinds sharing --fault-rate: error,rate_limit,timeout,drop,malformed.",
        ),
    ] = "error",
    latency_ms: Annotated[
        float, typer.Option("--latency-ms", min=0.0, help="Added to every call.")
    ] = 0.0,
    retry_after: Annotated[
        float, typer.Option("--retry-after", min=0.0, help="Seconds sent with 429.")
    ] = 1.0,
    hang: Annotated[
        float, typer.Option("--hang", min=0.0, help="Seconds a 'timeout' fault stalls.")
    ] = 30.0,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed for reproducible faults.")
    ] = None,
    durability: Annotated[
        str, typer.Option("--durability", help="normal (WAL, no fsync per entry) or full.")
    ] = "normal",
    token_env: Annotated[
        str,
        typer.Option("--token-env", help="Environment variable holding the API token to require."),
    ] = "",
) -> None:
    """Serve the embedded ledger as an HTTP ERP until Ctrl+C. Faults can also be changed while it
    runs: PUT /_sandbox/faults with a JSON plan; GET /_sandbox/stats shows counters."""
    from claimsync_console.erp.sandbox import DURABILITY, SandboxServer, open_sandbox_ledger
    from claimsync_console.erp.sandbox_faults import FaultPlan, FaultPlanError

    if durability not in DURABILITY:
        fail(f"--durability must be one of {', '.join(DURABILITY)}")
    token = ""
    if token_env:
        token = os.environ.get(token_env, "")
        if not token:
            fail(f"--token-env {token_env}: that environment variable is empty or unset")
    try:
        kinds = tuple(k.strip() for k in faults.split(",") if k.strip())
        plan = FaultPlan.spread(
            fault_rate,
            kinds,
            latency=latency_ms / 1000,
            retry_after=retry_after,
            hang=hang,
            seed=seed,
        )
    except FaultPlanError as error:
        fail(str(error))
    path = ledger or settings_for().data_dir / "sandbox-ledger.sqlite"
    server = SandboxServer(
        open_sandbox_ledger(path, durability=durability),
        host=host,
        port=port,
        faults=plan,
        token=token,
    )
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"WARNING: listening on {host}: no TLS; other machines can reach it", err=True)
    typer.echo(f"sandbox ERP on {server.url} (ledger {path}); Ctrl+C stops", err=True)
    typer.echo(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()
    raise typer.Exit(EXIT_OK)
