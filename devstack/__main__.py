"""``python -m devstack run [--data-dir PATH] [--services a,b] [--logs errors|all|none] [--endpoints-file PATH]``

What ``make run`` runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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
    args = parser.parse_args(argv)
    return run(args.data_dir or default_data_dir(), args.services, args.logs, args.endpoints_file)


if __name__ == "__main__":
    sys.exit(main())
