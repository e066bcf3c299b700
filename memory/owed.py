"""What a session owes its memory save, read in one statement: the session's
owner and bookkeeping, its messages since the last save, and the summary the
last save left (graph/remember.py: save_session_memories).

A logged-in user's every turn ends in a save; as three statements (the session,
the journal's stretch, the summary) its reads were four fifths of the save's
samples in a profile of bench/peer's 50 clients.
"""

from __future__ import annotations

from dataclasses import dataclass

from memory.db import Database, fetch
from memory.errors import SessionNotFound

# One row per message owed (seq NULL: none is, or memory is off, or no user);
# the session's columns, the summary and the user's last message saved before
# on each. An expired session is as gone.
_OWED_SQL = """
SELECT s.user_id, s.memory_enabled, s.memory_saved_seq, s.last_seq, s.title,
       s.expires_at IS NOT NULL AND s.expires_at <= now() AS expired,
       summary.content AS summary, asked.content AS asked_before, m.seq, m.role, m.content
  FROM chat_sessions s
  LEFT JOIN LATERAL (
    SELECT content FROM memories
     WHERE user_id = s.user_id AND kind = 'summary' AND source_session_id = s.id
  ) summary ON true
  LEFT JOIN LATERAL (
    SELECT content FROM chat_messages
     WHERE session_id = s.id AND role = 'user' AND seq <= s.memory_saved_seq
     ORDER BY seq DESC LIMIT 1
  ) asked ON true
  LEFT JOIN chat_messages m
    ON s.user_id IS NOT NULL AND s.memory_enabled
   AND m.session_id = s.id AND m.seq > s.memory_saved_seq AND m.seq <= s.last_seq
 WHERE s.id = %(session_id)s
 ORDER BY m.seq
"""


@dataclass(frozen=True)
class OwedSave:
    user_id: str | None
    memory_enabled: bool
    title: str | None
    summary: str  # the session's summary so far ("" before its first)
    asked_before: str  # the user's last message saved before ("" when none): "hey"
    turns: list[tuple[str, str]]  # (role, content) of the messages owed, oldest first
    upto_seq: int  # the seq of the last of them (the session's saved seq when none)


async def owed_save(db: Database, session_id: str, *, before_seq: int | None = None) -> OwedSave:
    """The session's owed save; SessionNotFound when it is gone (or expired).
    With `before_seq`, only the messages before it (a turn still running saves
    what came before its question)."""
    rows = await fetch(db, _OWED_SQL, {"session_id": session_id})
    if not rows or rows[0]["expired"]:
        raise SessionNotFound("session not found")
    first = rows[0]
    owed = [
        row
        for row in rows
        if row["seq"] is not None and (before_seq is None or row["seq"] < before_seq)
    ]
    return OwedSave(
        user_id=first["user_id"],
        memory_enabled=first["memory_enabled"],
        title=first["title"],
        summary=str(first["summary"] or ""),
        asked_before=str(first["asked_before"] or ""),
        turns=[(row["role"], row["content"]) for row in owed],
        upto_seq=owed[-1]["seq"] if owed else first["memory_saved_seq"],
    )
