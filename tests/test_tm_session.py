"""Sessions joined to a transaction manager (myapp.db.get_tm_session).

zope.sqlalchemy's listeners are registered once on the session factory and
forward to each session's own ``ZopeTransactionEvents``; these tests check
that a session still joins *its* manager's transaction — through pyramid_tm
in a request, and with a script's or job's manager — for every write path
zope.sqlalchemy watches, and that a session made without a manager is left
alone. They run with both factories the app builds (plain, and
replica-routing); those that call get_tm_session directly also with a
sessionmaker not built by get_session_factory, for which it falls back to
``zope.sqlalchemy.register``.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import transaction
import webtest
import zope.sqlalchemy
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response
from sqlalchemy import Engine, delete, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker
from transaction.interfaces import NoTransaction

from myapp.db import get_session_factory, get_tm_session
from myapp.db_reads import ReadOnlyRequestWrote
from myapp.db_replicas import ReplicaRouter
from myapp.db_tm import TM_DISPATCH
from myapp.models import Tag

VARIANTS = ["plain", "routing", "foreign"]


def make_factory(variant: str, engine: Engine) -> sessionmaker[Session]:
    if variant == "plain":
        return get_session_factory(engine)
    if variant == "routing":
        # No replicas: the routing session class, with every query on the primary.
        return get_session_factory(engine, ReplicaRouter(engine, []))
    return sessionmaker(bind=engine, expire_on_commit=False)


@pytest.fixture(params=VARIANTS)
def factory(
    request: pytest.FixtureRequest, engine: Engine, connection: Connection
) -> sessionmaker[Session]:
    """A factory whose sessions commit to a savepoint of the test's transaction."""
    factory = make_factory(request.param, engine)
    factory.configure(bind=connection, join_transaction_mode="create_savepoint")
    return factory


def new_name() -> str:
    return f"tm-{uuid.uuid4().hex[:12]}"


def tags(conn: Connection, *names: str) -> set[str]:
    return set(conn.scalars(select(Tag.name).where(Tag.name.in_(names))))


def manager() -> transaction.TransactionManager:
    tm = transaction.TransactionManager(explicit=True)
    tm.begin()
    return tm


def test_the_factory_forwards_every_event_zope_sqlalchemy_listens_to() -> None:
    # What zope.sqlalchemy.register (the per-session way) attaches to a session:
    # an upgrade that listens to another event must be forwarded too.
    session = Session()
    zope.sqlalchemy.register(session, transaction_manager=manager())
    dispatch = session.dispatch
    registered = {name for name in dispatch._event_names if getattr(dispatch, name).listeners}
    assert registered == set(TM_DISPATCH)


# --- a request, with pyramid_tm -----------------------------------------------------


@pytest.fixture(scope="module")
def request_app(database_url: str) -> Iterator[Configurator]:
    """pyramid_tm + myapp.db and two views that write, one of which then fails."""
    config = Configurator(settings={"sqlalchemy.url": database_url})
    config.include("pyramid_tm")
    config.include("myapp.db")

    def write(request: Request) -> Response:
        request.dbsession.add(Tag(name=request.params["name"]))
        return Response("ok")

    def write_then_fail(request: Request) -> Response:
        request.dbsession.add(Tag(name=request.params["name"]))
        request.dbsession.flush()
        raise RuntimeError("after the write")

    config.add_route("write", "/write")
    config.add_view(write, route_name="write")
    config.add_route("fail", "/fail")
    config.add_view(write_then_fail, route_name="fail")
    yield config
    config.registry["db_engine"].dispose()


@pytest.mark.parametrize("variant", ["plain", "routing"])
def test_a_requests_write_commits_and_an_exception_rolls_it_back(
    request_app: Configurator, engine: Engine, connection: Connection, variant: str
) -> None:
    factory = make_factory(variant, engine)
    factory.configure(bind=connection, join_transaction_mode="create_savepoint")
    request_app.registry["dbsession_factory"] = factory
    app = webtest.TestApp(request_app.make_wsgi_app())
    kept, failed = new_name(), new_name()

    app.post("/write", {"name": kept})
    with pytest.raises(RuntimeError):
        app.post("/fail", {"name": failed})

    # A GET begins no transaction (myapp.db_reads.tm_activate): its write
    # fails loudly instead of being dropped.
    sneaky = new_name()
    with pytest.raises(ReadOnlyRequestWrote):
        app.get("/write", {"name": sneaky})
    assert tags(connection, kept, failed, sneaky) == {kept}


# --- a script's or job's own manager ------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_two_sessions_with_two_managers_do_not_cross(engine: Engine, variant: str) -> None:
    # Real commits on separate connections: what one manager does must be
    # visible to everyone, and must not touch the other's session.
    factory = make_factory(variant, engine)
    first, second = new_name(), new_name()
    first_tm, second_tm = manager(), manager()
    try:
        first_session = get_tm_session(factory, first_tm)
        second_session = get_tm_session(factory, second_tm)
        first_session.add(Tag(name=first))
        second_session.add(Tag(name=second))
        first_session.flush()
        second_session.flush()

        first_tm.commit()
        with engine.connect() as conn:
            assert tags(conn, first, second) == {first}
        assert not first_session.in_transaction()
        assert second_session.in_transaction()
        assert second_session.scalar(select(Tag.name).where(Tag.name == second)) == second

        second_tm.abort()
        assert not second_session.in_transaction()
        with engine.connect() as conn:
            assert tags(conn, first, second) == {first}
    finally:
        for tm in (first_tm, second_tm):
            with contextlib.suppress(NoTransaction):  # (already ended)
                tm.abort()
        with engine.begin() as conn:
            conn.execute(delete(Tag).where(Tag.name.in_([first, second])))


def test_mark_changed_after_raw_sql_makes_the_commit_happen(
    factory: sessionmaker[Session], connection: Connection
) -> None:
    names = {marked: new_name() for marked in (True, False)}
    renamed = {marked: new_name() for marked in (True, False)}
    connection.execute(Tag.__table__.insert(), [{"name": name} for name in names.values()])
    for marked in (True, False):
        tm = manager()
        session = get_tm_session(factory, tm)
        session.execute(
            text("UPDATE tags SET name = :new WHERE name = :old"),
            {"new": renamed[marked], "old": names[marked]},
        )
        if marked:
            zope.sqlalchemy.mark_changed(session)
        tm.commit()
        assert not session.in_transaction()
    # Unmarked, the manager saw a read-only session and rolled it back.
    assert tags(connection, *names.values(), *renamed.values()) == {
        renamed[True],
        names[False],
    }


WRITES: dict[str, Callable[[Session, str], Any]] = {
    "flush": lambda session, name: session.add(Tag(name=name + "-new")),
    "orm update": lambda session, name: session.execute(
        update(Tag).where(Tag.name == name).values(name=name + "-new")
    ),
    "orm delete": lambda session, name: session.execute(delete(Tag).where(Tag.name == name)),
    "legacy bulk update": lambda session, name: (
        session.query(Tag)
        .filter(Tag.name == name)
        .update({"name": name + "-new"}, synchronize_session=False)
    ),
    "legacy bulk delete": lambda session, name: (
        session.query(Tag).filter(Tag.name == name).delete(synchronize_session=False)
    ),
}


@pytest.mark.parametrize("write", list(WRITES))
def test_every_orm_write_is_committed_by_the_manager(
    factory: sessionmaker[Session], connection: Connection, write: str
) -> None:
    name = new_name()
    connection.execute(Tag.__table__.insert(), {"name": name})
    before = tags(connection, name, name + "-new")
    tm = manager()
    session = get_tm_session(factory, tm)
    WRITES[write](session, name)
    tm.commit()
    after = tags(connection, name, name + "-new")
    assert after != before, "the write was rolled back"
    assert not session.in_transaction()


def test_a_session_must_be_committed_by_its_manager(
    factory: sessionmaker[Session], connection: Connection
) -> None:
    name = new_name()
    tm = manager()
    session = get_tm_session(factory, tm)
    session.add(Tag(name=name))
    session.flush()
    with pytest.raises(AssertionError, match="committed using the transaction manager"):
        session.commit()
    tm.abort()
    assert tags(connection, name) == set()


# --- a session without a manager ----------------------------------------------------


def test_a_plain_factory_session_works_on_its_own(
    factory: sessionmaker[Session], connection: Connection
) -> None:
    kept, dropped = new_name(), new_name()
    with factory() as session, session.begin():
        session.add(Tag(name=kept))
    with factory() as session:
        session.add(Tag(name=dropped))
        session.flush()
        session.rollback()
    with factory() as session:
        # Raw SQL and a commit of its own, with no manager to ask.
        session.execute(
            text("UPDATE tags SET name = :new WHERE name = :old"), {"new": kept + "-x", "old": kept}
        )
        session.commit()
    assert tags(connection, kept, kept + "-x", dropped) == {kept + "-x"}
