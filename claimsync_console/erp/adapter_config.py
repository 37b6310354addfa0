"""Adapter options from the configuration file and the environment, secrets kept apart.

Sources, strongest first, for an adapter NAME and an option OPT:

1. the environment: ``CLAIMSYNC_ADAPTER_<NAME>_<OPT>`` (upper case, ``-`` as ``_``);
2. the config file's ``[adapters.NAME]`` table (see ``settings.adapter_config``);
3. the option's declared default.

A *secret* option (``AdapterOption.secret``) is never read from the config file: a config file
is copied, committed and mailed, and a token in it leaks. It comes from its environment
variable, or from a file named by ``<OPT>_file`` (in the config file or the environment), whose
content is read here and never echoed. A secret written straight into the config file is a
configuration error that names the two allowed places, not the value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from claimsync_console.erp.base import AdapterConfigError, AdapterOption, ErpAdapter
from claimsync_console.settings import adapter_config

ENV_PREFIX = "CLAIMSYNC_ADAPTER_"


def env_name(adapter: str, option: str) -> str:
    return f"{ENV_PREFIX}{adapter}_{option}".upper().replace("-", "_")


def options_from_sources(
    name: str,
    declared: tuple[AdapterOption, ...],
    file_values: Mapping[str, object],
    environ: Mapping[str, str],
) -> dict[str, object]:
    """The raw option mapping for ``ErpAdapter(options)``; the adapter validates it."""
    by_name = {option.name: option for option in declared}
    secret_files = {f"{opt.name}_file" for opt in declared if opt.secret} - set(by_name)
    unknown = sorted(set(file_values) - set(by_name) - secret_files)
    if unknown:
        raise AdapterConfigError(
            f"[adapters.{name}]: unknown option(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(by_name))}"
        )
    values: dict[str, object] = {}
    for option in declared:
        value = _one(name, option, file_values, environ, reads_own_file=_reads(option, by_name))
        if value is not None:
            values[option.name] = value
    return values


def _reads(option: AdapterOption, by_name: Mapping[str, AdapterOption]) -> bool:
    """An adapter that declares ``<secret>_file`` itself reads that file itself."""
    return option.secret and f"{option.name}_file" in by_name


def _one(
    name: str,
    option: AdapterOption,
    file_values: Mapping[str, object],
    environ: Mapping[str, str],
    *,
    reads_own_file: bool,
) -> object | None:
    variable = env_name(name, option.name)
    if option.secret:
        if option.name in file_values:
            raise AdapterConfigError(
                f"[adapters.{name}] {option.name} is a secret and may not be in the config "
                f"file; set {variable} or {option.name}_file instead"
            )
        if environ.get(variable):
            return environ[variable]
        file_key = f"{option.name}_file"
        if reads_own_file:
            return None
        path = environ.get(env_name(name, file_key)) or str(file_values.get(file_key) or "")
        return _read_secret(name, option.name, path) if path else None
    if environ.get(variable):
        return environ[variable]
    value = file_values.get(option.name)
    if isinstance(value, int) and not isinstance(value, bool) and option.type is float:
        return float(value)  # TOML writes 5 for 5.0
    return value


def _read_secret(name: str, option: str, path: str) -> str:
    try:
        return Path(path).expanduser().read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise AdapterConfigError(
            f"[adapters.{name}] {option}_file {path}: {exc.strerror or 'unreadable'}"
        ) from None


def configured_options(
    adapter_class: type[ErpAdapter], name: str, environ: Mapping[str, str] | None = None
) -> dict[str, object]:
    """Options for ``name`` from the config file and the environment (SettingsError for an
    unreadable config file, AdapterConfigError for bad options)."""
    env = dict(os.environ if environ is None else environ)
    return options_from_sources(name, adapter_class.options, adapter_config(name, env), env)


def create_configured_adapter(name: str, environ: Mapping[str, str] | None = None) -> ErpAdapter:
    """The named adapter, built from the config file and the environment."""
    from claimsync_console.erp.registry import UnknownAdapterError, available_adapters

    adapters = available_adapters()
    if name not in adapters:
        known = ", ".join(adapters) or "none"
        raise UnknownAdapterError(f"no ERP adapter named {name!r}; installed: {known}")
    adapter_class = adapters[name]
    return adapter_class(configured_options(adapter_class, name, environ))
