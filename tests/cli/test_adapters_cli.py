"""``claimsync adapters list|check`` with real adapters, a real sandbox, real config files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from claimsync_console.cli.app import app
from claimsync_console.erp.adapter_config import configured_options
from claimsync_console.erp.base import AdapterConfigError
from claimsync_console.erp.rest import RestAdapter
from claimsync_console.erp.sandbox import SandboxServer, open_sandbox_ledger
from tests.erp.test_registry import ENTRY_POINTS, PLUGIN_MODULE, PLUGIN_SOURCE, _write_distribution

runner = CliRunner()
TOKEN = "tok-9f8e7d6c5b4a"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLAIMSYNC_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("CLAIMSYNC_CONFIG", raising=False)
    for name in ("BASE_URL", "TOKEN", "AUTH", "OUTBOUND"):
        monkeypatch.delenv(f"CLAIMSYNC_ADAPTER_REST_{name}", raising=False)
    return tmp_path


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxServer]:
    ledger = open_sandbox_ledger(tmp_path / "sandbox.sqlite3", year=2024)
    with SandboxServer(ledger, token=TOKEN) as server:
        yield server


def _config(env: Path, text: str) -> None:
    (env / "config.toml").write_text(text)


def test_list_shows_the_built_in_adapters_and_their_options(env: Path) -> None:
    result = runner.invoke(app, ["adapters", "list", "--json"])
    assert result.exit_code == 0, result.output
    described = {a["name"]: a for a in json.loads(result.stdout)["adapters"]}
    assert {"ledger", "rest", "batchfile"} <= set(described)
    token = next(o for o in described["rest"]["options"] if o["name"] == "token")
    assert token["secret"] is True and token["env"] == "CLAIMSYNC_ADAPTER_REST_TOKEN"
    assert described["rest"]["capabilities"]["supports_batch"] is True
    text = runner.invoke(app, ["adapters", "list"])
    assert text.exit_code == 0 and "batchfile" in text.stdout and "secret" in text.stdout


def test_a_broken_plugin_is_a_warning_not_a_crash(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugins = tmp_path / "plugins"
    _write_distribution(plugins, "claimsync_cli_test_plugins", ENTRY_POINTS)
    (plugins / f"{PLUGIN_MODULE}.py").write_text(PLUGIN_SOURCE)
    monkeypatch.syspath_prepend(str(plugins))
    result = runner.invoke(app, ["adapters", "list"])
    assert result.exit_code == 0
    assert "'broken'" in result.stderr and "skipped" in result.stderr
    assert "echo" in result.stdout and "rest" in result.stdout
    assert "Traceback" not in result.output
    checked = runner.invoke(app, ["adapters", "check", "echo"])
    assert checked.exit_code == 0, checked.output


def test_check_ok_with_token_from_the_environment_and_never_prints_it(
    env: Path, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _config(env, f'[adapters.rest]\nbase_url = "{sandbox.url}"\nauth = "bearer"\ntimeout = 5\n')
    monkeypatch.setenv("CLAIMSYNC_ADAPTER_REST_TOKEN", TOKEN)
    result = runner.invoke(app, ["adapters", "check", "rest"])
    assert result.exit_code == 0, result.output
    assert "ok" in result.stdout and "token = ********" in result.stdout
    assert TOKEN not in result.output


def test_check_reads_the_token_from_a_file(env: Path, sandbox: SandboxServer) -> None:
    secret = env / "rest.token"
    secret.write_text(TOKEN + "\n")
    _config(env, f'[adapters.rest]\nbase_url = "{sandbox.url}"\nauth = "header"\n'
                 f'token_file = "{secret}"\n')  # fmt: skip
    result = runner.invoke(app, ["adapters", "check", "rest", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["options"]["token"] == "********"
    assert TOKEN not in result.output


def test_a_secret_in_the_config_file_is_refused(env: Path, sandbox: SandboxServer) -> None:
    _config(env, f'[adapters.rest]\nbase_url = "{sandbox.url}"\ntoken = "{TOKEN}"\n')
    result = runner.invoke(app, ["adapters", "check", "rest"])
    assert result.exit_code == 2
    assert "CLAIMSYNC_ADAPTER_REST_TOKEN" in result.stderr and "token_file" in result.stderr
    assert TOKEN not in result.output


@pytest.mark.parametrize(
    "table",
    ['auth = "bearer"', 'auth = "sometimes"', "timeout = [1]", 'colour = "blue"',
     'base_url = "gopher://x"'],
)  # fmt: skip
def test_bad_configuration_exits_2(env: Path, table: str) -> None:
    _config(env, f"[adapters.rest]\n{table}\n")
    result = runner.invoke(app, ["adapters", "check", "rest"])
    assert result.exit_code == 2, result.output
    assert "configuration error" in result.stderr and "Traceback" not in result.output


def test_an_unreachable_erp_exits_5(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIMSYNC_ADAPTER_REST_BASE_URL", "http://127.0.0.1:9")
    result = runner.invoke(app, ["adapters", "check", "rest"])
    assert result.exit_code == 5, result.output
    assert "UNAVAILABLE" in result.stdout


def test_wrong_token_is_unavailable_not_a_crash(
    env: Path, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAIMSYNC_ADAPTER_REST_BASE_URL", sandbox.url)
    monkeypatch.setenv("CLAIMSYNC_ADAPTER_REST_AUTH", "bearer")
    monkeypatch.setenv("CLAIMSYNC_ADAPTER_REST_TOKEN", "not-the-token")
    result = runner.invoke(app, ["adapters", "check", "rest"])
    assert result.exit_code == 5 and "credentials" in result.stdout
    assert "not-the-token" not in result.output


def test_batchfile_check(env: Path) -> None:
    outbound = env / "outbound"
    _config(env, f'[adapters.batchfile]\noutbound = "{outbound}"\nbatch_size = 10\n')
    assert runner.invoke(app, ["adapters", "check", "batchfile"]).exit_code == 5  # not mounted
    outbound.mkdir()
    result = runner.invoke(app, ["adapters", "check", "batchfile"])
    assert result.exit_code == 0, result.output
    assert not list(outbound.glob("*.manifest.json"))  # a check writes no batch
    _config(env, "[adapters.batchfile]\nbatch_size = 10\n")
    missing = runner.invoke(app, ["adapters", "check", "batchfile"])
    assert missing.exit_code == 2 and "outbound" in missing.stderr


def test_unknown_adapter_and_unreadable_config_exit_2(env: Path) -> None:
    unknown = runner.invoke(app, ["adapters", "check", "sap-hana-9000"])
    assert unknown.exit_code == 2 and "installed" in unknown.stderr
    _config(env, "[adapters.rest\n")
    broken = runner.invoke(app, ["adapters", "check", "rest"])
    assert broken.exit_code == 2 and "config" in broken.stderr


def test_environment_beats_the_config_file(env: Path) -> None:
    _config(env, "[claimsync.adapters.rest]\ntimeout = 4\nmax_retries = 1\n")
    environ = {"CLAIMSYNC_DATA_DIR": str(env), "CLAIMSYNC_ADAPTER_REST_MAX_RETRIES": "5"}
    options = configured_options(RestAdapter, "rest", environ)
    assert options["timeout"] == 4.0 and options["max_retries"] == "5"
    assert RestAdapter(options).settings["max_retries"] == 5
    environ["CLAIMSYNC_ADAPTER_REST_TOKEN_FILE"] = str(env / "missing")
    with pytest.raises(AdapterConfigError):
        RestAdapter(configured_options(RestAdapter, "rest", environ))


BAD_DECLARATIONS = """
from claimsync_console.erp.base import ErpAdapter


class Sloppy(ErpAdapter):
    name = "sloppy"
    options = ("url", "token")  # names, not AdapterOption

    def post_entry(self, entry): ...
    def reverse_entry(self, erp_reference, idempotency_key, reversal_date): ...
    def get_entry(self, erp_reference): ...
    def health(self): ...
"""


def test_a_plugin_with_malformed_options_is_skipped(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugins = tmp_path / "sloppy"
    _write_distribution(
        plugins, "claimsync_sloppy", "[claimsync.erp_adapters]\nsloppy = claimsync_sloppy:Sloppy\n"
    )
    (plugins / "claimsync_sloppy.py").write_text(BAD_DECLARATIONS)
    monkeypatch.syspath_prepend(str(plugins))
    result = runner.invoke(app, ["adapters", "list", "--json"])
    assert result.exit_code == 0, result.output
    assert "'sloppy'" in result.stderr and "AdapterOption" in result.stderr
    assert "sloppy" not in {a["name"] for a in json.loads(result.stdout)["adapters"]}
    assert runner.invoke(app, ["adapters", "check", "sloppy"]).exit_code == 2
