"""What a caller's rights to one session are judged by, read in one statement:
the user a login token (or else a personal API key) proves, whether an
anonymous token is one the server issued and still live, and the session row.

Every question on a socket reads them afresh (threads/operations.py:
Threads.authorize), before its `ack`; as three statements they took a pool
connection and a round trip each; an Agent Server API request reads its key's
user and its thread here too. The token rules are written here once:
users.user_for_token and api_keys.user_for_key read through this statement.
Whose session it is, and whether it expired, is judged on the row
(memory/sessions.py: Owner.owns, has_expired); the slide is anonymous.py's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from memory.db import Database, fetch
from memory.models import ChatSession, User, detached
from memory.sessions import session_from_row

# A live anonymous owner's expiry slides at most this often, so a busy socket
# (whose rights are read before every question) does not write a row per read.
SLIDE_EVERY = timedelta(minutes=1)
_SESSION_COLUMNS = [c.name for c in ChatSession.__table__.columns]
_USER_COLUMNS = [c.name for c in User.__table__.columns]


def _columns(names: list[str], alias: str) -> str:
    return ", ".join(f"{alias}.{name} AS {alias}_{name}" for name in names)


# One row whatever matches: each part is NULL where its token or session is not
# there. A key is looked at only when no login token proved a user.
_RIGHTS_SQL = f"""
SELECT {_columns(_SESSION_COLUMNS, "s")}, {_columns(_USER_COLUMNS, "u")},
       {_columns(_USER_COLUMNS, "ku")}, k.id AS key_id, k.last_used_at AS key_last_used_at,
       a.token_hash IS NOT NULL AS anon_live, a.last_seen_at < now() - %(slide)s AS anon_stale
  FROM (SELECT 1) one
  LEFT JOIN chat_sessions s ON s.id = %(session_id)s
  LEFT JOIN (auth_tokens t JOIN users u ON u.id = t.user_id AND u.is_active)
    ON t.token_hash = %(login)s AND t.revoked_at IS NULL AND t.expires_at > now()
  LEFT JOIN (api_keys k JOIN users ku ON ku.id = k.user_id AND ku.is_active)
    ON k.key_hash = %(key)s AND k.revoked_at IS NULL AND u.id IS NULL
  LEFT JOIN anonymous_owners a ON a.token_hash = %(anon)s AND a.expires_at > now()
"""


@dataclass(frozen=True)
class RightsRow:
    """What `read_rights` found: None or False where nothing matched."""

    user: User | None  # the active user of a live login token, else of a live API key
    anonymous_live: bool  # the anonymous token is one the server issued, unexpired
    anonymous_stale: bool  # ... and seen over SLIDE_EVERY ago: due to slide (AnonymousOwners.slide)
    session: ChatSession | None  # the row, whoever owns it, expired or not
    key_id: str | None = None  # the API key that proved `user` ...
    key_last_used_at: datetime | None = None  # ... and its use as last recorded


async def read_rights(
    db: Database,
    session_id: str | None,
    *,
    login_token_hash: str | None,
    anon_token_hash: str | None,
    api_key_hash: str | None = None,
) -> RightsRow:
    """The session `session_id` (None: none is read) and what the token hashes
    prove, in one statement on the psycopg pool."""
    params = {
        "session_id": session_id,
        "login": login_token_hash,
        "anon": anon_token_hash,
        "key": api_key_hash,
        "slide": SLIDE_EVERY,
    }
    [row] = await fetch(db, _RIGHTS_SQL, params)
    session = None
    if row["s_id"] is not None:
        session = session_from_row({c: row[f"s_{c}"] for c in _SESSION_COLUMNS})
    user, key_id = None, None
    if row["u_id"] is not None:
        user = detached(User, {c: row[f"u_{c}"] for c in _USER_COLUMNS})
    elif row["ku_id"] is not None:
        user = detached(User, {c: row[f"ku_{c}"] for c in _USER_COLUMNS})
        key_id = row["key_id"]
    return RightsRow(
        user,
        bool(row["anon_live"]),
        bool(row["anon_stale"]),
        session,
        key_id,
        row["key_last_used_at"] if key_id is not None else None,
    )
