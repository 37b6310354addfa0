"""Typed settings, each saying what it is for.

Sources, strongest first: a command-line option, a ``CLAIMSYNC_*`` environment variable, the
TOML file named by ``CLAIMSYNC_CONFIG`` (or ``config.toml`` in the data folder), then the default.
Only the standard library and platformdirs are imported here, so ``claimsync --help`` stays fast.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote

APP_NAME = "claimsync"


def default_data_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False))


def sqlite_file(url: str) -> Path | None:
    """The file an SQLite URL names (``sqlite:////abs/x.sqlite``, ``sqlite+pysqlite:///rel.db``),
    or None for another database, an in-memory one or a ``file:`` URI. Parsed here, without
    SQLAlchemy, so the settings stay cheap to import; it reads the path the way SQLAlchemy does
    (after the third slash, up to the query, percent-decoded)."""
    scheme, separator, rest = url.partition("://")
    if not separator or scheme.split("+", 1)[0].lower() != "sqlite":
        return None
    path = rest.partition("?")[0]
    if not path.startswith("/"):
        return None
    database = unquote(path[1:])
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(
        default_factory=default_data_dir,
        metadata=_help("Folder for the embedded database, the ledger file and quarantined files."),
    )
    database_url: str = field(
        default="",
        metadata=_help(
            "SQLAlchemy URL of the engine's store. Empty means an SQLite file in data_dir; "
            "use postgresql+psycopg://... for a team."
        ),
    )
    erp_adapter: str = field(
        default="ledger", metadata=_help("Name of the ERP adapter postings go to.")
    )
    ledger_path: str = field(
        default="",
        metadata=_help(
            "SQLite file of the embedded ledger ERP. Empty means ledger.sqlite next to the "
            "SQLite database file (in data_dir when the database is not SQLite)."
        ),
    )
    rules_path: str = field(
        default="",
        metadata=_help(
            "Posting rules TOML (payer, CARC, facility, PLB -> accounts). Empty means the "
            "packaged sample rules."
        ),
    )
    operator: str = field(
        default="", metadata=_help("Who performs console and CLI actions; empty means the OS user.")
    )
    role: str = field(
        default="analyst", metadata=_help("The operator's role: analyst or supervisor.")
    )
    bulk_confirm_typed_above: int = field(
        default=25,
        metadata=_help(
            "A console action on more marked items than this asks the operator to type the "
            "count to confirm (at or below it, a yes/no question). 0 always asks for typing."
        ),
    )

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+pysqlite:///{self.data_dir / 'claimsync.sqlite'}"

    @property
    def resolved_ledger_path(self) -> Path:
        """Next to the SQLite database by default, so a store and the ledger it posted to stay
        together: pointing the CLI at the demo's database posts into the demo's ledger, not a
        new one in data_dir that no other command reads (docs/decisions.md)."""
        if self.ledger_path:
            return Path(self.ledger_path)
        database = sqlite_file(self.resolved_database_url)
        return (database.parent if database is not None else self.data_dir) / "ledger.sqlite"

    @property
    def resolved_rules_path(self) -> Path:
        if self.rules_path:
            return Path(self.rules_path)
        from importlib import resources

        return Path(
            str(resources.files("claimsync_console") / "sample_rules" / "posting-rules.toml")
        )

    @property
    def resolved_operator(self) -> str:
        if self.operator:
            return self.operator
        import getpass

        try:
            return getpass.getuser()
        except (KeyError, OSError):
            return "unknown"


class SettingsError(ValueError):
    """A configuration value is wrong; the CLI turns it into exit code 2."""


def describe() -> list[tuple[str, str, str]]:
    """(name, environment variable, help) for every setting, for docs and ``--help``."""
    return [(f.name, f"CLAIMSYNC_{f.name.upper()}", f.metadata["help"]) for f in fields(Settings)]


def _coerce(name: str, value: Any) -> Any:
    if name == "data_dir":
        return Path(str(value)).expanduser()
    if name == "bulk_confirm_typed_above":
        try:
            count = int(str(value))
        except ValueError:
            raise SettingsError(f"setting {name} must be a whole number, got {value!r}") from None
        if count < 0:
            raise SettingsError(f"setting {name} must be 0 or more, got {count}")
        return count
    if not isinstance(value, str):
        raise SettingsError(f"setting {name} must be a string, got {value!r}")
    return value


def _from_file(environ: dict[str, str]) -> dict[str, Any]:
    explicit = environ.get("CLAIMSYNC_CONFIG")
    path = Path(explicit) if explicit else None
    if path is None:
        data_dir = environ.get("CLAIMSYNC_DATA_DIR")
        path = (Path(data_dir) if data_dir else default_data_dir()) / "config.toml"
        if not path.exists():
            return {}
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise SettingsError(f"config file {path} does not exist") from error
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"config file {path}: {error}") from error
    section = document.get("claimsync", document)
    known = {f.name for f in fields(Settings)}
    unknown = sorted(k for k in section if k not in known and not isinstance(section[k], dict))
    if unknown:
        raise SettingsError(f"config file {path}: unknown setting(s) {', '.join(unknown)}")
    return {k: _coerce(k, v) for k, v in section.items() if k in known}


def adapter_config(name: str, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The ``[adapters.NAME]`` table of the config file (``[claimsync.adapters.NAME]`` works
    too), or {}. Values stay raw: the adapter's declared options validate them, and the erp
    layer refuses secrets found here (they come only from the environment or a file)."""
    env = dict(os.environ if environ is None else environ)
    explicit = env.get("CLAIMSYNC_CONFIG")
    if explicit:
        path = Path(explicit)
    else:
        data_dir = env.get("CLAIMSYNC_DATA_DIR")
        path = (Path(data_dir) if data_dir else default_data_dir()) / "config.toml"
        if not path.exists():
            return {}
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise SettingsError(f"config file {path}: {error}") from error
    for scope in (document.get("claimsync", {}), document):
        adapters = scope.get("adapters") if isinstance(scope, dict) else None
        table = adapters.get(name) if isinstance(adapters, dict) else None
        if isinstance(table, dict):
            return dict(table)
    return {}


def load_settings(environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from file, environment and explicit overrides (None overrides are ignored)."""
    env = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = _from_file(env)
    for f in fields(Settings):
        raw = env.get(f"CLAIMSYNC_{f.name.upper()}")
        if raw:
            values[f.name] = _coerce(f.name, raw)
    for name, value in overrides.items():
        if value is not None:
            values[name] = _coerce(name, value)
    settings = replace(Settings(), **values)
    if settings.role not in ("analyst", "supervisor"):
        raise SettingsError(f"role must be analyst or supervisor, got {settings.role!r}")
    return settings
