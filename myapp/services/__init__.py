"""The Conduit domain: what the API and the pages both do.

Functions here take a SQLAlchemy session and plain values, never a request,
and raise :mod:`myapp.services.errors` exceptions that each front end (JSON
API, HTML pages) renders its own way.
"""
