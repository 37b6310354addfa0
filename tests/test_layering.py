"""Each layer imports only the layers below it, and only console/ may import textual."""

from __future__ import annotations

import ast
from pathlib import Path

import claimsync_console

PACKAGE = Path(claimsync_console.__file__).parent
# Lowest first. erp/ sits below engine/: adapters know the domain, never the engine's store.
LAYERS = ["domain", "x12", "store", "erp", "engine", "console", "cli"]
SHARED = {"settings", "__init__"}  # package-level modules any layer may use
FORBIDDEN_THIRD_PARTY = {
    "domain": {"sqlalchemy", "httpx", "typer", "rich", "textual", "alembic"},
    "x12": {"sqlalchemy", "httpx", "typer", "textual"},
    "console": {"sqlalchemy", "alembic"},  # no SQL in the console
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def layer_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_layers_only_import_downwards() -> None:
    problems = []
    for path in modules():
        layer = layer_of(path)
        if layer not in LAYERS:
            continue
        allowed = set(LAYERS[: LAYERS.index(layer) + 1]) | SHARED
        for name in imports_of(path):
            parts = name.split(".")
            if parts[0] != "claimsync_console" or len(parts) < 2:
                continue
            if parts[1] not in allowed:
                problems.append(f"{path.relative_to(PACKAGE)} ({layer}) imports {name}")
    assert not problems, "\n".join(problems)


def test_only_console_imports_textual() -> None:
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in modules()
        if layer_of(path) != "console"
        and any(n == "textual" or n.startswith("textual.") for n in imports_of(path))
    ]
    assert not offenders


def test_forbidden_third_party_imports() -> None:
    problems = []
    for path in modules():
        forbidden = FORBIDDEN_THIRD_PARTY.get(layer_of(path), set())
        for name in imports_of(path):
            if name.split(".")[0] in forbidden:
                problems.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert not problems, "\n".join(problems)


def test_console_reaches_data_only_through_the_engine() -> None:
    """The console runs no SQL: no sqlalchemy (above) and no store module, even though the
    layer order would allow it; its data comes from engine/console_backend.py and friends."""
    problems = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in modules()
        if layer_of(path) == "console"
        for name in imports_of(path)
        if name == "claimsync_console.store" or name.startswith("claimsync_console.store.")
    ]
    assert not problems, "\n".join(problems)


def test_the_check_sees_a_violation(tmp_path: Path) -> None:
    """Guard against a checker that silently passes: a planted import must be found."""
    planted = tmp_path / "bad.py"
    planted.write_text("from textual.app import App\nimport claimsync_console.cli.app\n")
    assert {"textual.app", "claimsync_console.cli.app"} <= imports_of(planted)
