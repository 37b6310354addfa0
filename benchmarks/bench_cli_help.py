"""Start-up benchmark: ``claimsync --help`` wall time against baselines measured in the same run
(issue #5: at most 250 ms).

    python benchmarks/bench_cli_help.py                  # 15 runs of each, interleaved
    python benchmarks/bench_cli_help.py --repeat 30

Every command runs as a fresh process (what a shell or a cron job pays), interleaved round by
round so that load from other processes spreads over all of them alike. The baselines:
``python -c pass`` (the interpreter alone), ``python -c 'import typer'`` (the CLI framework),
and ``import claimsync_console.cli.app`` (our command tree, without rendering help). Reported:
the median and the best run of each, and each one's ratio to ``python -c pass``. The goal is
the median of ``claimsync --help`` at most 250 ms. ``claimsync items list --help`` is shown
for comparison: any subcommand pays for typer building its parameters (pydantic TypeAdapters,
typer >= 0.2x), which the top-level help does not. Run it on a quiet machine: the absolute
figures follow the load, the ratios much less.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import table, verdict

GOAL_MS = 250.0
CLAIMSYNC = shutil.which("claimsync") or str(Path(sys.executable).parent / "claimsync")
COMMANDS: dict[str, list[str]] = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "python -c 'import typer'": [sys.executable, "-c", "import typer"],
    "import claimsync_console.cli.app": [sys.executable, "-c", "import claimsync_console.cli.app"],
    "claimsync --help": [CLAIMSYNC, "--help"],
    "claimsync items list --help": [CLAIMSYNC, "items", "list", "--help"],
}


def wall_ms(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) milliseconds of one run; CPU time (user + system of the child) moves much
    less than wall time when other processes load the machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                   check=True)  # fmt: skip
    wall = (time.perf_counter() - start) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="runs of each command")
    args = parser.parse_args()
    env = {**os.environ, "COLUMNS": "100"}
    for command in COMMANDS.values():  # warm the file cache and the .pyc files first
        wall_ms(command, env)
    samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
    cpu: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeat):
        for name, command in COMMANDS.items():
            wall, used = wall_ms(command, env)
            samples[name].append(wall)
            cpu[name].append(used)
    base = statistics.median(samples["python -c pass"])
    rows = [
        [
            name,
            f"{statistics.median(times):.0f}",
            f"{min(times):.0f}",
            f"{statistics.median(cpu[name]):.0f}",
            f"{statistics.median(times) / base:.2f}x",
        ]
        for name, times in samples.items()
    ]
    print(f"{args.repeat} runs each, interleaved; ratios against the median of python -c pass")
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPU(s)")
    print(table(["command", "median ms", "best ms", "median CPU ms", "vs python"], rows))
    help_ms = statistics.median(samples["claimsync --help"])
    ok = help_ms <= GOAL_MS
    print(f"\nclaimsync --help: {help_ms:.0f} ms median, goal <= {GOAL_MS:.0f} ms: {verdict(ok)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
