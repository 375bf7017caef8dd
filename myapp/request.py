"""The request class: Pyramid's, with every ``add_request_method`` built in once.

``config.add_request_method`` (``request.dbsession``, ``request.tm``,
``request.cache``, ``request.session``...) is applied to each request by the
router: the methods are bound one by one, and the properties need a class
that has them, so Pyramid builds a new subclass of the request class *for
every request* (``InstancePropertyHelper.apply_properties``). A class is a
big object with reference cycles: building it, and collecting it later,
cost ~0.1 ms of a 1.1 ms uncached API read (measured in-process; docs/
database.md, "The cost of one uncached read").

:class:`Configurator` builds that subclass once, when the app is made,
registers it as the request factory, and tells the router there is
nothing left to apply. Everything else keeps working as Pyramid documents
it: the extensions stay registered, so ``pyramid.scripting.prepare`` (pshell,
scripts, jobs) still applies them to a request made elsewhere. (Not
``request.invoke_subrequest`` with a plain ``Request.blank``: build the
subrequest from ``request.registry``'s request factory; the app makes none.)
"""

from __future__ import annotations

from typing import Any

import pyramid.config
from pyramid.interfaces import IRequestExtensions, IRequestFactory
from pyramid.registry import Registry
from pyramid.request import Request
from pyramid.router import Router


def request_class(registry: Registry) -> type[Request]:
    """The registry's request factory with its request methods and properties
    as class attributes (the factory itself when there are none)."""
    base: type[Request] = registry.queryUtility(IRequestFactory, default=Request)
    extensions = registry.queryUtility(IRequestExtensions)
    if extensions is None:
        return base
    # The same objects Pyramid would put on each request: plain functions
    # (bound on access, like ``fn.__get__(request)``) and the properties
    # (``reify`` or ``SettableProperty``) it made of the callables.
    attrs: dict[str, Any] = {**extensions.methods, **extensions.descriptors}
    attrs["__module__"] = base.__module__
    return type(base.__name__, (base,), attrs)


class Configurator(pyramid.config.Configurator):
    """Pyramid's configurator, whose WSGI app builds no class per request."""

    def make_wsgi_app(self) -> Router:
        self.commit()
        self.registry.registerUtility(request_class(self.registry), IRequestFactory)
        app = super().make_wsgi_app()
        # The request class carries the extensions: nothing to apply per request.
        app.request_extensions = None
        return app
