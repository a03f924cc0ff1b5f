"""The access log (uvicorn's, through hub.web.security.PathOnly) never prints an identity
number someone typed into a path, nor a query string."""

from __future__ import annotations

import logging

import pytest

from hub.ledger.event import IDENTITY_NUMBER
from hub.web.security import PathOnly

PNR = "199001012385"  # a Skatteverket test personnummer
ACCESS_LINE = '%s - "%s %s HTTP/%s" %d'


def logged(path: str, status: int = 404) -> str:
    """The access-log line uvicorn would print for GET ``path`` (as sent), through the
    filter `evi web serve` gives it."""
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        ACCESS_LINE,
        ("127.0.0.1:5000", "GET", path, "1.1", status),
        None,
    )
    assert PathOnly().filter(record)
    return record.getMessage()


@pytest.mark.parametrize(
    "path",
    [
        f"/participants/{PNR}",
        f"/participants/{PNR[:8]}-{PNR[8:]}",
        f"/participants/{PNR[2:8]}+{PNR[8:]}",
        f"/participants/{PNR[:8]}%2B{PNR[8:]}",  # the path as sent: percent-encoded
        "/participants/" + "".join(f"%3{d}" for d in PNR),
        f"/api/log/entries/{PNR}/more",
    ],
)
def test_an_identity_number_typed_into_a_path_is_masked_in_the_access_log(path: str) -> None:
    line = logged(path)
    assert PNR not in line and PNR[2:] not in line and PNR[8:] not in line
    assert not IDENTITY_NUMBER.search(line)
    assert line.startswith('127.0.0.1:5000 - "GET /') and line.endswith(' HTTP/1.1" 404')
    assert "[masked]" in line


def test_the_masked_line_keeps_the_rest_of_the_path_and_drops_the_query() -> None:
    line = logged(f"/participants/{PNR}/status?participant=p-1")
    assert line == '127.0.0.1:5000 - "GET /participants/[masked]/status HTTP/1.1" 404'
    assert logged("/stats.csv?from=2025-04-01", 200) == (
        '127.0.0.1:5000 - "GET /stats.csv HTTP/1.1" 200'
    )
    # numbers too short to be one are left alone
    assert logged("/api/admin/transfers/failed/20250401", 200) == (
        '127.0.0.1:5000 - "GET /api/admin/transfers/failed/20250401 HTTP/1.1" 200'
    )
