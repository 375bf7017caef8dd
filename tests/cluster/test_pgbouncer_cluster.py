"""``PGBOUNCER=1 make cluster``: the replicas reach Postgres through PgBouncer.

Run by ``make test-cluster`` (.ci/run). Two replicas of two workers each
open up to 2 x 2 x (5 + 5) client connections; Postgres must see no more
than PgBouncer's pool, and every request must still succeed.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, make_url, pool, text

from myapp.db import normalize_url
from tests.cluster.harness import Cluster, Load, make_cluster, request
from tests.conftest import create_database, drop_database
from tests.pg import free_port

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(
        shutil.which("pgbouncer") is None,
        reason="PgBouncer not installed (apt-get install pgbouncer)",
    ),
]
POOL = 3


@pytest.fixture(scope="module")
def bounced() -> Iterator[tuple[Cluster, str]]:
    url = create_database()
    cluster = make_cluster(url, base_port=6651, nginx_port=6656, replicas=2)
    cluster.env.update(
        PGBOUNCER="1",
        PGBOUNCER_PORT=str(free_port(6641, 6649)),
        PGBOUNCER_POOL_SIZE=str(POOL),
    )
    try:
        cluster.up()
        yield cluster, url
    finally:
        cluster.down()
        drop_database(url)


def backends(url: str) -> int:
    name = make_url(normalize_url(url)).database
    admin = create_engine(
        make_url(normalize_url(url)).set(database="postgres"), poolclass=pool.NullPool
    )
    try:
        with admin.connect() as conn:
            return int(
                conn.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE datname = :d"), {"d": name}
                ).scalar_one()
            )
    finally:
        admin.dispose()


def test_traffic_through_pgbouncer(bounced: tuple[Cluster, str]) -> None:
    cluster, url = bounced
    peak = 0
    paths = ["/api/articles?limit=5", "/api/tags", "/api/articles?limit=1&offset=1", "/"]
    with Load(cluster.nginx_port, paths, threads=8, limit=30) as load:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            peak = max(peak, backends(url))
            time.sleep(0.05)
    assert load.total > 100
    assert load.failures() == {}, (load.failures(), load.errors[:5])
    assert 0 < peak <= POOL
    # The app knows it is behind PgBouncer, and its pools are in /metrics.
    _, _, body = request(cluster.replica_port(1), "/metrics")
    assert b"conduit_db_pool_size" in body
    status, _, ready = request(cluster.replica_port(1), "/readyz")
    assert status == 200 and json.loads(ready)["checks"]["database"] == "ok"
