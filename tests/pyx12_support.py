"""pyx12 as an independent validator: the writer tests and the sample-data tests both ask it
whether written X12 passes the 5010 implementation-guide maps."""

from __future__ import annotations

import io
import logging

import pyx12.params
import pyx12.x12n_document


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def pyx12_problems(text: str) -> list[str]:
    """What pyx12 reports against its 5010 implementation-guide maps; empty when valid."""
    collector = _Collect()
    logger = logging.getLogger("pyx12")
    logger.addHandler(collector)
    try:
        valid = pyx12.x12n_document.x12n_document(
            pyx12.params.params(), io.StringIO(text), None, None, None, None
        )
    finally:
        logger.removeHandler(collector)
    if not valid and not collector.messages:
        collector.messages.append("pyx12 says invalid without saying why")
    return collector.messages
