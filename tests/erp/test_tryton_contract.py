"""The ERP adapter contract against a real trytond, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from claimsync_console.erp.base import ErpAdapter
from claimsync_console.erp.tryton import TrytonAdapter
from tests.erp.conftest import _require_postgres
from tests.erp.contract import ErpAdapterContract, fresh_key, payment_entry
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

    def test_threads_sharing_one_adapter_spread_over_the_processes(
        self, two_processes: RunningTryton
    ) -> None:
        """Engine workers share one adapter on several threads, each handing it one batch: each
        thread's requests go to its own trytond, or they would all queue on the first one's
        single core."""
        adapter = two_processes.adapter(batch_size=50)
        adapter.post_entry(payment_entry(fresh_key("thread")))  # opens the journal's period:
        before = adapter.entry_count()  # two first posts in a period race for it (a 503)
        batches = [[payment_entry(fresh_key("thread")) for _ in range(6)] for _ in range(2)]
        results: dict[int, list[bool]] = {}
        barrier = threading.Barrier(2)

        def post(index: int) -> None:
            barrier.wait()
            results[index] = [r.created for r in adapter.post_entries(batches[index])]

        threads = [threading.Thread(target=post, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == {0: [True] * 6, 1: [True] * 6}
        assert [rpc.logins for rpc in adapter.rpcs] == [1, 1]
        assert adapter.entry_count() == before + 12
        adapter.close()
