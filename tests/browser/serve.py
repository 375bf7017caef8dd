"""Serve the app for the browser tests: ``python -m tests.browser.serve SETTINGS_JSON PORT``.

A process of its own, as in production: the tests reach it over HTTP only.
"""

from __future__ import annotations

import json
import logging
import sys

import waitress

from myapp.config import configure


def main() -> None:
    settings = json.loads(sys.argv[1])
    port = int(sys.argv[2])
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s [%(name)s] %(message)s")
    app = configure(settings).make_wsgi_app()
    waitress.serve(app, listen=f"127.0.0.1:{port}", threads=8, ident="conduit-test")


if __name__ == "__main__":
    main()
