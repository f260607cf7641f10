"""Which database failures are worth retrying as they are: the database, or the way to it, is away or asked for
a retry (deadlock, serialization), so nothing is wrong with what was being stored. Consumers hold on to their
messages (or nak them with a delay) for these, and treat anything else as a problem with the message."""

from __future__ import annotations

import asyncpg
import sqlalchemy.exc
from sqlalchemy.exc import DBAPIError

_TRANSIENT = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    sqlalchemy.exc.TimeoutError,
    sqlalchemy.exc.DisconnectionError,
)


def cause(error: BaseException) -> BaseException:
    """The driver's error behind SQLAlchemy's wrapper, if any."""
    if isinstance(error, DBAPIError) and error.orig is not None:
        return getattr(error.orig, "__cause__", None) or error.orig
    return error


def is_transient(error: BaseException) -> bool:
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(cause(error), _TRANSIENT)


def is_data_error(error: BaseException) -> bool:
    """PostgreSQL refused the data itself (class 22 data exception, class 23 constraint): storing the same data
    again can never succeed."""
    return isinstance(cause(error), asyncpg.DataError | asyncpg.IntegrityConstraintViolationError)
