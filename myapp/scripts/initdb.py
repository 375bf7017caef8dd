"""``myapp-initdb INI``: migrate the database to head, then load demo data
into an empty one. Safe to run on every start and from several replicas at
once (the migration takes an advisory lock; the demo data only goes into a
database without users)."""

from __future__ import annotations

import argparse
import sys

from pyramid.paster import bootstrap, setup_logging

from myapp.scripts import demo_data, migrate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config_uri", help="the ini file, e.g. development.ini")
    parser.add_argument("--no-demo", action="store_true", help="do not load demo data")
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    setup_logging(args.config_uri)
    with bootstrap(args.config_uri) as env:
        url = env["registry"].settings["sqlalchemy.url"]
        migrate.upgrade(args.config_uri, url)
        if not args.no_demo:
            created = demo_data.load_if_empty(env["request"])
            print("demo data loaded" if created else "database has users: demo data skipped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
