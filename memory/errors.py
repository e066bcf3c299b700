"""Domain errors of the storage layer; `app/` maps them to HTTP and WebSocket errors."""

import psycopg
import psycopg_pool
import sqlalchemy.exc


class ThreadlineError(Exception):
    """Base of every domain error; `code` is what clients see."""

    code = "error"


class InvalidInput(ThreadlineError):
    """Input that cannot be stored as given (empty, too long, NUL bytes, bad id)."""

    code = "invalid_input"


class SessionNotFound(ThreadlineError):
    """No such session, or not the caller's: both answer the same."""

    code = "not_found"


class MessageIdConflict(ThreadlineError):
    """A message id already used in another session (never overwritten)."""

    code = "message_id_conflict"


class DatabaseUnavailable(ThreadlineError):
    """The database cannot be reached."""

    code = "database_unavailable"


# What a lost database connection raises, through psycopg, its pool or SQLAlchemy.
DATABASE_DOWN: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg_pool.PoolTimeout,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
)
