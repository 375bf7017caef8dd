"""The connection budget: checked at startup against the real server's limits."""

from __future__ import annotations

import logging

import pytest
from pyramid.exceptions import ConfigurationError
from sqlalchemy import create_engine, pool, text

from myapp import db_budget
from myapp.config import configure
from tests.conftest import base_settings
from tests.test_db import closed_port


def server_limits(url: str) -> tuple[int, int]:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            max_connections = int(conn.execute(text("SHOW max_connections")).scalar_one())
            reserved = int(conn.execute(text("SHOW superuser_reserved_connections")).scalar_one())
    finally:
        engine.dispose()
    return max_connections, reserved


def test_per_process_is_pool_size_plus_overflow() -> None:
    assert db_budget.per_process({}) == 5 + 10  # SQLAlchemy's defaults
    settings = {"sqlalchemy.pool_size": "4", "sqlalchemy.max_overflow": "2"}
    assert db_budget.per_process(settings) == 6


def test_the_budget_is_the_servers_limit_minus_reserves(database_url: str) -> None:
    max_connections, superuser = server_limits(database_url)
    settings = {
        "db.expected_processes": "3",
        "sqlalchemy.pool_size": "2",
        "sqlalchemy.max_overflow": "1",
        "db.connection_reserve": "7",
    }
    [budget] = db_budget.enforce(settings, [database_url])
    assert budget.limit == max_connections - superuser - 7
    assert (budget.processes, budget.per_process, budget.needed) == (3, 3, 9)
    assert budget.ok


def test_an_app_whose_pools_do_not_fit_refuses_to_start(database_url: str) -> None:
    max_connections, _ = server_limits(database_url)
    processes = max_connections // 10 + 1  # x (5 + 5) > max_connections
    settings = base_settings(database_url) | {
        "db.expected_processes": str(processes),
        "sqlalchemy.pool_size": "5",
        "sqlalchemy.max_overflow": "5",
    }
    with pytest.raises(ConfigurationError) as raised:
        configure(settings)
    message = str(raised.value)
    assert f"{processes} processes x 10 connections" in message
    assert f"max_connections {max_connections}" in message
    assert "PgBouncer" in message


def test_warn_only_logs(database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    settings = {
        "db.expected_processes": "1000",
        "db.connection_budget": "warn",
    }
    with caplog.at_level(logging.ERROR, logger="myapp.db_budget"):
        [budget] = db_budget.enforce(settings, [database_url])
    assert not budget.ok
    assert "connection budget exceeded" in caplog.text


def test_the_environment_sets_the_process_count(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_EXPECTED_PROCESSES", "1000")
    with pytest.raises(ConfigurationError):
        configure(base_settings(database_url))


def test_no_process_count_no_check() -> None:
    assert db_budget.enforce({}, ["postgresql+psycopg2://nobody@127.0.0.1:1/none"]) == []


def test_an_unreachable_server_is_not_checked(caplog: pytest.LogCaptureFixture) -> None:
    down = f"postgresql+psycopg2://postgres@127.0.0.1:{closed_port()}/nothing"
    with caplog.at_level(logging.WARNING, logger="myapp.db_budget"):
        assert db_budget.enforce({"db.expected_processes": "1000"}, [down]) == []
    assert "not checked (unreachable)" in caplog.text


def test_behind_pgbouncer_the_limit_is_its_client_limit() -> None:
    settings = {
        "db.expected_processes": "30",
        "db.pgbouncer": "true",
        "db.pgbouncer_max_client_conn": "400",
    }
    [budget] = db_budget.budgets(settings, ["postgresql+psycopg2://x@127.0.0.1:1/x"])
    assert (budget.server, budget.needed, budget.limit, budget.ok) == ("pgbouncer", 450, 400, False)
    with pytest.raises(ConfigurationError, match="max_client_conn"):
        db_budget.enforce(settings, [])
    settings["db.pgbouncer_max_client_conn"] = "1000"
    assert db_budget.enforce(settings, [])[0].ok
