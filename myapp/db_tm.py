"""zope.sqlalchemy's listeners, registered once per session factory.

Every request's session joins pyramid_tm's transaction through
zope.sqlalchemy; :func:`get_tm_session` makes such a session (myapp.db gives
it to requests, scripts and jobs pass their own manager).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import transaction
import zope.sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker
from zope.sqlalchemy.datamanager import ZopeTransactionEvents

# zope.sqlalchemy, once per factory rather than once per session
# ---------------------------------------------------------------
# ``zope.sqlalchemy.register(session, ...)`` adds seven listeners to the one
# session instance, and SQLAlchemy's per-instance event registration is
# slow: ~0.3 ms of a warm ~3 ms API request (and its weakref bookkeeping
# when the session is garbage collected), paid on every request.
# The listeners cannot simply go on the factory with one manager, because
# every session has its own: pyramid_tm's explicit ``request.tm``, or a
# script's or job's. So the factory gets, once, a dispatcher per event that
# forwards to the session's own ``ZopeTransactionEvents`` (the object
# ``register`` would have built, holding that session's manager), kept in
# ``session.info``. A session without one — made by the factory directly,
# outside get_tm_session — is left alone, as it was when nothing was
# registered on it. The forwarded calls are exactly those ``register``
# sets up (zope.sqlalchemy 4.x, SQLAlchemy >= 1.4), with the same arguments;
# tests/test_tm_session.py fails if an upgrade makes it listen to more.

TM_EVENTS = "db.tm_events"  # session.info: this session's ZopeTransactionEvents
# Set on a factory's session class once the dispatcher listens there; class
# events apply to subclasses, and so does this attribute.
_TM_DISPATCH = "_myapp_tm_dispatch"


def _tm_after_begin(session: Session, session_transaction: Any, connection: Connection) -> None:
    events = session.info.get(TM_EVENTS)
    if events is not None:
        events.after_begin(session, session_transaction, connection)


def _tm_after_attach(session: Session, instance: Any) -> None:
    events = session.info.get(TM_EVENTS)
    if events is not None:
        events.after_attach(session, instance)


def _tm_after_flush(session: Session, flush_context: Any) -> None:
    events = session.info.get(TM_EVENTS)
    if events is not None:
        events.after_flush(session, flush_context)


def _tm_after_bulk_update(update_context: Any) -> None:
    events = update_context.session.info.get(TM_EVENTS)
    if events is not None:
        events.after_bulk_update(update_context)


def _tm_after_bulk_delete(delete_context: Any) -> None:
    events = delete_context.session.info.get(TM_EVENTS)
    if events is not None:
        events.after_bulk_delete(delete_context)


def _tm_before_commit(session: Session) -> None:
    events = session.info.get(TM_EVENTS)
    if events is not None:
        events.before_commit(session)


def _tm_do_orm_execute(execute_state: Any) -> None:
    events = execute_state.session.info.get(TM_EVENTS)
    if events is not None:
        events.do_orm_execute(execute_state)


TM_DISPATCH: dict[str, Callable[..., None]] = {
    "after_begin": _tm_after_begin,
    "after_attach": _tm_after_attach,
    "after_flush": _tm_after_flush,
    "after_bulk_update": _tm_after_bulk_update,
    "after_bulk_delete": _tm_after_bulk_delete,
    "before_commit": _tm_before_commit,
    "do_orm_execute": _tm_do_orm_execute,
}


def dispatch_tm_events(factory: sessionmaker[Session]) -> None:
    for name, dispatch in TM_DISPATCH.items():
        event.listen(factory, name, dispatch)
    setattr(factory.class_, _TM_DISPATCH, True)


def get_tm_session(
    session_factory: sessionmaker[Session], transaction_manager: transaction.TransactionManager
) -> Session:
    """A session joined to ``transaction_manager`` (pyramid_tm's or a script's)."""
    dbsession = session_factory()
    if getattr(dbsession, _TM_DISPATCH, False):
        # The factory forwards to this (see above): no listener to register.
        dbsession.info[TM_EVENTS] = ZopeTransactionEvents(transaction_manager=transaction_manager)
    else:
        # A factory not made by get_session_factory: the slow, general way.
        zope.sqlalchemy.register(dbsession, transaction_manager=transaction_manager)
    return dbsession
