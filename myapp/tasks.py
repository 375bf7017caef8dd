"""Background jobs: dispatched after commit, run in a transaction of their own.

* **Declaring a job**: ``@job(name="conduit.x")`` on ``def x(request, *args)``
  (myapp/jobs/). Like every decorator here it acts only at ``config.scan``.
* **Dispatching**: ``request.dispatch(x, *args, owner=user) -> job id``. The id
  is made now and a ``jobs`` row is added *in the request's transaction*; the
  message is sent by an after-commit hook, only if the commit succeeded. A
  rolled-back (or retried) request sends nothing and leaves no row. This is
  warehouse's "tasks only after commit", plus a job id the caller can poll.
* **Running**: each attempt gets a request from ``pyramid.scripting.prepare``
  (``request.dbsession``, ``.registry``, ``.cache``, ``.dispatch``) with its
  own explicit transaction manager: commit on success (the job's row turns
  ``succeeded`` in that same commit), abort on error.
* **Reliability** (Celery): ``acks_late`` — the message is acknowledged after
  the attempt, so a worker killed mid-job leaves it to be delivered again;
  ``retry_on_worker_lost``/``reject_on_worker_lost`` for a pool process that
  dies; transient errors (database disconnects and serialization failures,
  SMTP/network down) are retried with exponential back-off and jitter; every
  task has a soft and a hard time limit. Effects are idempotent (a job that
  already succeeded is skipped; notifications have a unique key), so a
  second delivery does not send or write twice.
* **Where jobs run**: with ``celery.broker_url`` (``CELERY_BROKER_URL``;
  Redis or RabbitMQ) on ``celery -A myapp.tasks worker --ini production.ini``
  (``beat`` for the periodic jobs). Without a broker — the embedded default —
  an in-process thread runs the same attempts with the same transactions and
  back-off (myapp/jobs/embedded.py).
"""

from __future__ import annotations

import logging
import os
import smtplib
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import celery
import click
import pyramid.paster
import pyramid.scripting
import transaction
import venusian
from celery import signals
from pyramid.config import Configurator
from pyramid.registry import Registry
from pyramid.request import Request
from sqlalchemy.exc import OperationalError

from myapp.cache import without_request_tokens
from myapp.jobs import records
from myapp.metrics import job_event
from myapp.models.job import Job

log = logging.getLogger(__name__)

JobFunction = Callable[..., dict[str, Any] | None]


class TransientError(Exception):
    """Raised by a job for a failure that will likely pass (SMTP 4xx, ...)."""


# Worth another attempt later: the database went away or a serializable
# transaction lost a race (both OperationalError), the network or the mail
# server is down. Anything else is a bug or bad data, and retrying won't help.
TRANSIENT: tuple[type[BaseException], ...] = (
    OperationalError,
    ConnectionError,
    TimeoutError,
    socket.gaierror,
    smtplib.SMTPServerDisconnected,
    smtplib.SMTPConnectError,
    TransientError,
)


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 8
    backoff_max: int = 300

    def countdown(self, retries: int) -> float:
        """Seconds before attempt ``retries + 2``: Celery's own formula."""
        from celery.utils.time import get_exponential_backoff_interval

        return float(get_exponential_backoff_interval(1, retries, self.backoff_max, True))


@dataclass(frozen=True)
class JobSpec:
    name: str
    func: JobFunction
    # (setting, default seconds) of a periodic job; 0 or less turns it off.
    every: tuple[str, float] | None = None
    time_limit: int | None = None
    options: dict[str, Any] = field(default_factory=dict)


def job(
    name: str,
    every: tuple[str, float] | None = None,
    time_limit: int | None = None,
    **options: Any,
) -> Callable[[JobFunction], JobFunction]:
    """Declare ``func(request, *args)`` as the job ``name`` (registered at scan)."""

    def deco(func: JobFunction) -> JobFunction:
        def callback(scanner: Any, _name: str, wrapped: JobFunction) -> None:
            spec = JobSpec(name, wrapped, every, time_limit, options)
            scanner.config.registry["jobs"][name] = spec

        # "pyramid": the category config.scan() looks at by default.
        venusian.attach(func, callback, category="pyramid")
        func.job_name = name  # type: ignore[attr-defined]
        return func

    return deco


# -- running one attempt ---------------------------------------------------------


def run_attempt(
    registry: Registry, name: str, job_id: str, func: JobFunction, args: list[Any]
) -> dict[str, Any] | None:
    """One attempt of job ``job_id``, in a transaction of its own."""
    if not records.start(registry, job_id, name, args):
        log.info("job %s (%s) already succeeded; not running it again", job_id, name)
        return None
    env = pyramid.scripting.prepare(registry=registry)
    request = env["request"]
    request.tm = transaction.TransactionManager(explicit=True)
    request.job_id = job_id
    try:
        with without_request_tokens(), request.tm:
            result = func(request, *args)
            records.succeed(request.dbsession, job_id, result)
        job_event(name, "succeeded")
        return result
    finally:
        env["closer"]()


class JobTask(celery.Task):
    """The Celery side of every job (see the module docs)."""

    acks_late = True
    reject_on_worker_lost = True
    # Takes precedence over reject_on_worker_lost and counts against
    # max_retries, so a job that always kills its process cannot loop forever.
    retry_on_worker_lost = True
    default_retry_delay = 5
    autoretry_for = TRANSIENT
    retry_backoff = True
    retry_jitter = True
    ignore_result = True

    def on_retry(self, exc: Any, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        records.retrying(self.app.registry, task_id, exc)
        job_event(self.name, "retried")

    def on_failure(self, exc: Any, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        records.failed(self.app.registry, task_id, exc)
        job_event(self.name, "failed")


def _task_body(spec: JobSpec) -> Callable[..., Any]:
    # Autoretry wraps this whole function, so errors from the commit itself
    # (not only from the job's code) are retried too.
    def body(task: celery.Task, *args: Any) -> dict[str, Any] | None:
        return run_attempt(task.app.registry, spec.name, task.request.id, spec.func, list(args))

    body.__name__ = spec.func.__name__
    body.__doc__ = spec.func.__doc__
    return body


def _coerce(value: Any) -> Any:
    for kind in (int, float):
        try:
            return kind(value)
        except (TypeError, ValueError):
            pass
    return value


def retry_policy(settings: dict[str, Any]) -> RetryPolicy:
    return RetryPolicy(
        max_retries=int(settings.get("celery.max_retries", 8)),
        backoff_max=int(settings.get("celery.retry_backoff_max", 300)),
    )


def configure_celery(celery_app: celery.Celery, registry: Registry) -> celery.Celery:
    """Configure ``celery_app`` from the registry's settings and jobs."""
    settings = registry.settings
    queue = str(settings.get("celery.queue") or "conduit")
    policy = retry_policy(settings)
    time_limit = int(settings.get("celery.time_limit", 300))
    prefix = "celery.transport."
    transport = {k[len(prefix) :]: _coerce(v) for k, v in settings.items() if k.startswith(prefix)}
    schedule: dict[str, Any] = {}
    for spec in registry["jobs"].values():
        if spec.every:
            interval = float(settings.get(spec.every[0], spec.every[1]))
            if interval > 0:
                # A periodic message nobody took within its interval is stale.
                options = {"expires": interval}
                schedule[spec.name] = {"task": spec.name, "schedule": interval, "options": options}
    celery_app.conf.update(
        broker_url=settings["celery.broker_url"],
        broker_connection_retry_on_startup=True,
        broker_transport_options=transport,
        # Parallel deployments (and test runs) on one broker use their own
        # queue, so one never takes the other's jobs.
        task_default_queue=queue,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # With late acks, a worker should hold one unstarted message at most.
        worker_prefetch_multiplier=1,
        # Sending happens after the commit, while the client waits: fail fast.
        task_publish_retry=True,
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.5,
            "interval_max": 1,
        },
        beat_schedule=schedule,
        timezone="UTC",
        enable_utc=True,
    )
    celery_app.registry = registry
    for spec in registry["jobs"].values():
        limit = spec.time_limit or time_limit
        celery_app.task(
            name=spec.name,
            base=JobTask,
            bind=True,
            shared=False,
            lazy=False,
            max_retries=policy.max_retries,
            retry_backoff_max=policy.backoff_max,
            # The soft limit raises inside the job (its transaction aborts and
            # it is marked failed); the hard one kills a job that ignores it.
            soft_time_limit=limit,
            time_limit=limit + 30,
            **spec.options,
        )(_task_body(spec))
    return celery_app


# -- sending -----------------------------------------------------------------------


class Runner(Protocol):
    def send(self, name: str, job_id: str, args: list[Any]) -> None: ...


class CeleryRunner:
    def __init__(self, celery_app: celery.Celery):
        self.celery_app = celery_app

    def send(self, name: str, job_id: str, args: list[Any]) -> None:
        try:
            self.celery_app.tasks[name].apply_async(args=args, task_id=job_id)
        except Exception as exc:
            # The commit stands; the job stays queued and the periodic
            # requeue (myapp.jobs.periodic) sends it once the broker is back.
            log.exception("could not send job %s (%s)", job_id, name)
            records.not_sent(self.celery_app.registry, job_id, exc)


def job_name(func: JobFunction | str) -> str:
    return func if isinstance(func, str) else str(func.job_name)  # type: ignore[union-attr]


def dispatch(request: Request, func: JobFunction | str, *args: Any, owner: Any = None) -> str:
    """Queue ``func(*args)`` to run after this request commits; its job id.

    ``owner`` (a user or user id) may poll the job at /api/jobs/{id}.
    """
    return dispatch_job(request, func, *args, owner=owner).id


def dispatch_job(request: Request, func: JobFunction | str, *args: Any, owner: Any = None) -> Job:
    """:func:`dispatch`, returning the new (pending) ``jobs`` row itself.

    For a caller that answers with the job: the session only holds weak
    references, so looking the row up again by id after the flush costs a
    SELECT (the object may already be gone from its identity map).
    """
    name = job_name(func)
    if name not in request.registry["jobs"]:
        raise LookupError(f"no job named {name!r} (was myapp.jobs scanned?)")
    job_id = str(uuid.uuid4())
    owner_id = getattr(owner, "id", owner)
    row = records.create(request.dbsession, job_id, name, owner_id, list(args))
    send_after_commit(request, name, job_id, list(args))
    return row


def send_after_commit(request: Request, name: str, job_id: str, args: list[Any]) -> None:
    """Send job ``job_id`` once (and only if) the request's transaction commits."""
    runner = request.registry["jobs.runner"]
    request.tm.get().addAfterCommitHook(_send_if_committed, args=(runner, name, job_id, args))


def _send_if_committed(
    committed: bool, runner: Runner, name: str, job_id: str, args: list[Any]
) -> None:
    if committed:
        runner.send(name, job_id, args)
        job_event(name, "sent")


def uses_celery(settings: dict[str, Any]) -> bool:
    runner = settings.get("jobs.runner")
    return runner == "celery" or (not runner and bool(settings.get("celery.broker_url")))


def _finish(config: Configurator) -> None:
    from myapp.jobs.embedded import ThreadRunner

    registry = config.registry
    if uses_celery(registry.settings):
        celery_app = celery.Celery("conduit", set_as_current=False)
        configure_celery(celery_app, registry)
        registry["celery.app"] = celery_app
        registry["jobs.runner"] = CeleryRunner(celery_app)
    else:
        registry["jobs.runner"] = ThreadRunner(registry, retry_policy(registry.settings))


def includeme(config: Configurator) -> None:
    config.registry["jobs"] = {}
    config.add_request_method(dispatch, "dispatch")
    # After config.scan has collected the jobs.
    config.action(("conduit", "jobs"), _finish, args=(config,), order=100)


# -- the command line: celery -A myapp.tasks worker|beat --ini FILE ------------------

#: The app the ``celery`` command finds; ``--ini`` configures it (below).
app = celery.Celery("conduit", set_as_current=False)
app.user_options["preload"].add(
    click.Option(
        ["--ini"],
        envvar="CONDUIT_INI",
        help="The app's ini file (settings, overridden by env vars). Env: CONDUIT_INI.",
    )
)


def bootstrap(celery_app: celery.Celery, ini: str) -> Registry:
    """Build the Pyramid app from ``ini`` and let ``celery_app`` serve its jobs."""
    env = pyramid.paster.bootstrap(ini)
    env["closer"]()
    registry: Registry = env["registry"]
    if not uses_celery(registry.settings):
        raise click.UsageError(
            f"{ini} names no broker (celery.broker_url / CELERY_BROKER_URL): without one, "
            "the web process runs jobs itself"
        )
    configure_celery(celery_app, registry)
    # Jobs that dispatch jobs send them through this same app.
    registry["celery.app"] = celery_app
    registry["jobs.runner"] = CeleryRunner(celery_app)
    return registry


def _on_preload_options(app: celery.Celery, options: dict[str, Any], **_: Any) -> None:
    if app is not globals()["app"]:
        return
    ini = options.get("ini") or os.environ.get("CONDUIT_INI")
    # Celery logs and ignores a signal handler's exceptions, and would then
    # start on its default broker: stop the command instead.
    if not ini:
        raise SystemExit("error: --ini FILE (or CONDUIT_INI) names the app's settings")
    try:
        bootstrap(app, ini)
    except click.UsageError as exc:
        raise SystemExit(f"error: {exc.message}") from exc
    except Exception as exc:
        log.exception("could not configure the worker from %s", ini)
        raise SystemExit(f"error: could not configure the worker from {ini}: {exc}") from exc


# Connected at import: the celery command imports this module to find ``app``
# and sends the signal before it starts the worker or beat.
signals.user_preload_options.connect(_on_preload_options, weak=False)
