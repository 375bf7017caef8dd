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


def _forwarder(name: str, session_of: Callable[[Any], Session]) -> Callable[..., None]:
    """A listener for event ``name`` that calls the session's own
    ``ZopeTransactionEvents.<name>`` with the same arguments, if it has one."""

    def forward(*args: Any) -> None:
        events = session_of(args[0]).info.get(TM_EVENTS)
        if events is not None:
            getattr(events, name)(*args)

    forward.__name__ = f"_tm_{name}"
    return forward


def _itself(session: Session) -> Session:
    return session


def _context_session(context: Any) -> Session:
    # The bulk events and do_orm_execute get a context holding the session.
    return context.session


TM_DISPATCH: dict[str, Callable[..., None]] = {
    name: _forwarder(name, session_of)
    for name, session_of in [
        ("after_begin", _itself),
        ("after_attach", _itself),
        ("after_flush", _itself),
        ("after_bulk_update", _context_session),
        ("after_bulk_delete", _context_session),
        ("before_commit", _itself),
        ("do_orm_execute", _context_session),
    ]
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
