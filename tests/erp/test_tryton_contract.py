"""The ERP adapter contract against a real trytond, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from claimsync_console.erp.base import ErpAdapter
from claimsync_console.erp.tryton import TrytonAdapter
from tests.erp.conftest import _require_postgres
from tests.erp.contract import ErpAdapterContract
from tests.erp.tryton_server import RunningTryton, TrytonTemplates, free_port


class TestTrytonContract(ErpAdapterContract):
    @pytest.fixture
    def erp_adapter(self, tryton_server: RunningTryton) -> Iterator[ErpAdapter]:
        adapter = tryton_server.adapter()
        yield adapter
        adapter.close()

    @pytest.fixture
    def unavailable_erp_adapter(self, tryton_server: RunningTryton) -> Iterator[ErpAdapter]:
        """Nothing listens on the port: every call is refused, which is transient."""
        adapter = TrytonAdapter(tryton_server.options(url=f"http://127.0.0.1:{free_port()}"))
        yield adapter
        adapter.close()

    def entry_count(self, adapter: ErpAdapter) -> int | None:
        assert isinstance(adapter, TrytonAdapter)
        return adapter.entry_count()


@pytest.mark.postgres
class TestTrytonParallelContract(ErpAdapterContract):
    """The same contract through ``parallel_requests``: two trytond processes on one PostgreSQL
    database, small chunks so that every batch is split across both."""

    @pytest.fixture(scope="class")
    def two_processes(self, tryton_templates: TrytonTemplates) -> Iterator[RunningTryton]:
        _require_postgres(tryton_templates)
        with tryton_templates.serve_copy("postgres", "parallel", processes=2) as server:
            yield server

    @pytest.fixture
    def erp_adapter(self, two_processes: RunningTryton) -> Iterator[ErpAdapter]:
        adapter = two_processes.adapter(batch_size=2, parallel_requests=2)
        yield adapter
        adapter.close()

    @pytest.fixture
    def unavailable_erp_adapter(self, two_processes: RunningTryton) -> Iterator[ErpAdapter]:
        url = ",".join(f"http://127.0.0.1:{free_port()}" for _ in range(2))
        adapter = TrytonAdapter(two_processes.options(url=url, parallel_requests=2))
        yield adapter
        adapter.close()

    def entry_count(self, adapter: ErpAdapter) -> int | None:
        assert isinstance(adapter, TrytonAdapter)
        return adapter.entry_count()
