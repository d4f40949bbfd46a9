"""A PostgreSQL server for the session, started by the tests themselves (see postgres_server)."""

from __future__ import annotations

import pytest
from postgres_server import PostgresServer, find_bindir


@pytest.fixture(scope="session")
def postgres_url():
    """``postgres://postgres@127.0.0.1:PORT/retain`` on a fresh server, stopped at the end."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL binaries (initdb, pg_ctl); install postgresql or run `make pg`")
    server = PostgresServer(bindir).start()
    try:
        yield server.url
    finally:
        server.stop()
