"""The ERP adapter contract against a real trytond, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from claimsync_console.erp.base import ErpAdapter
from claimsync_console.erp.tryton import TrytonAdapter
from tests.erp.contract import ErpAdapterContract
from tests.erp.tryton_server import RunningTryton, free_port


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
