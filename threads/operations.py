"""The operations on threads, one door for every entry point.

Each operation checks the caller's rights first (a stranger learns nothing, not
even that a thread is busy), then takes the thread's lock for anything that
changes the thread, so no delete, merge, claim or cleanup ever runs beside a
turn, in this process or another.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import IO, Any, TypeVar

from graph.nodes import answer_id_for
from graph.state import Query
from graph.statements import statements
from graph.turn import read_window, validate_query
from memory.checkpoints import prune_thread
from memory.errors import InvalidInput, MessageIdConflict, SessionNotFound
from memory.import_reading import import_scope
from memory.imports import ImportReport, import_sessions
from memory.journal import Journal
from memory.maintenance import Expired, find_expired, merge_sessions
from memory.models import ChatMessage, ChatSession
from memory.session_format import ImportLimits
from memory.sessions import Owner, check_session_id, has_expired
from memory.users import UserStore
from threads.access import Caller, Credentials, identify, identify_with_session
from threads.events import EventBus, OutboxLimits, Watcher
from threads.import_reader import read_parts
from threads.locks import SessionBusy, ThreadLocks
from threads.memory_saver import MemorySaver
from threads.options import ThreadOptions
from threads.runs import RunRegistry, already_opened
from threads.turn_deps import TurnDeps

log = logging.getLogger(__name__)

PAGE = 500
CLEANUP_BATCH = 200
ROLL_BACK_WAIT_S = 5.0  # a stopped turn's lock is let go right after its last frames
T = TypeVar("T")


@dataclass(frozen=True)
class LastTurn:
    """A thread's last question, its answer when the answer follows it, and the
    seq of the message before the question (0 when there is none)."""

    question: ChatMessage
    answer: ChatMessage | None
    before: int

    @property
    def ids(self) -> list[str]:
        return [self.question.id, *([self.answer.id] if self.answer is not None else [])]


async def last_turn(journal: Journal, session_id: str) -> LastTurn | None:
    """The thread's last turn, when its last message is a question or the answer
    to the question before it (the only turn that may be asked again, edited or
    rolled back: the journal is never branched); else None."""
    rows = await journal.tail(session_id, 3)
    if rows and rows[-1].role == "user":
        question, answer, prior = rows[-1], None, rows[:-1]
    elif len(rows) >= 2 and rows[-2].role == "user" and rows[-1].id == answer_id_for(rows[-2].id):
        question, answer, prior = rows[-2], rows[-1], rows[:-2]
    else:
        return None
    return LastTurn(question, answer, prior[-1].seq if prior else 0)


@dataclass
class Threads:
    """What happens to a thread, whoever asks (REST, WebSocket, CLI, MCP, cleanup)."""

    deps: TurnDeps
    users: UserStore
    locks: ThreadLocks
    events: EventBus
    runs: RunRegistry
    memory_saver: MemorySaver
    options: ThreadOptions

    # Rights

    async def identify(self, credentials: Credentials) -> Caller:
        return await identify(self.users, credentials)

    async def open(self, session_id: str, owner: Owner) -> ChatSession:
        """The session if `owner` may use it; SessionNotFound (never "forbidden") if not."""
        return await self.deps.sessions.get(session_id, owner)

    async def authorize(
        self, credentials: Credentials, session_id: str, *, user_only: bool = False
    ) -> ChatSession:
        """Rights read afresh: for a socket's every question and after every access
        change, and for every Agent Server API call on a thread.

        Who the caller is and the session row are read in one statement
        (`identify_with_session`); the owner check is then made on the row, as
        `open` makes it. No identity at all answers NotSignedIn first; so does no
        logged-in user with `user_only` (then only the user's own threads count,
        never an anonymous token's).
        """
        try:
            checked: str | None = check_session_id(session_id)
        except SessionNotFound:
            checked = None  # no such session can exist: not read, not found
        caller, session = await identify_with_session(self.users, credentials, checked)
        owner = Owner(user_id=caller.require_user().id) if user_only else caller.require_owner()
        if session is None or not owner.owns(session) or has_expired(session):
            raise SessionNotFound("session not found")
        return session

    async def settle_memories(self, user_id: str) -> None:
        """Before a user's memories are listed, the saves their threads still
        owe in this process are finished (`MemorySaver.settle`), so what they
        said a moment ago is in the list."""
        await self.memory_saver.settle(user_id)

    # Turns

    def watch(self, session: ChatSession, limits: OutboxLimits | None = None) -> Watcher:
        """Subscribe to the thread's events; with `limits`, a watcher that falls
        behind is dropped instead of growing without bound."""
        return self.events.subscribe(session.id, session.user_id, limits)

    def unwatch(self, watcher: Watcher) -> None:
        self.events.unsubscribe(watcher)

    async def ask(self, session: ChatSession, query: Query) -> list[dict[str, Any]]:
        """Run a turn (or replay a resend's answer); see RunRegistry.submit."""
        return await self.runs.submit(session, query)

    async def ask_as(
        self, credentials: Credentials, session_id: str, query: Query
    ) -> tuple[ChatSession, list[dict[str, Any]]]:
        """`ask`, for a caller whose rights are read afresh for this query (a socket):
        they are read while the thread's lock is taken (RunRegistry.submit_allowed).
        Returns the session as just read, and the frames for the caller alone."""
        return await self.runs.submit_allowed(
            self.authorize(credentials, session_id), session_id, query
        )

    async def redo(
        self, credentials: Credentials, session_id: str, question_id: str, new: Query | None = None
    ) -> tuple[ChatSession, list[dict[str, Any]]]:
        """`redo_in`, for a caller whose rights are read afresh for it (a socket)."""
        return await self._redo(
            self.authorize(credentials, session_id), session_id, question_id, new
        )

    async def redo_in(
        self, session: ChatSession, question_id: str, new: Query | None = None
    ) -> list[dict[str, Any]]:
        """Ask the thread's last question again (regenerate: `new` is None) or in new
        words (edit: `new` replaces it), like `ask`, on a session the caller opened.

        Under the thread's lock, before the turn: the question must be the
        thread's last message or be followed only by its answer (else
        InvalidInput); its answer, and for an edit the question too, are taken
        out of the journal, and every watcher is told (`retracted`). The turn
        then runs as any other, so nothing is doubled: a regenerated answer keeps
        its id, the model sees the thread without what was taken out.
        """
        _, frames = await self._redo(already_opened(session), session.id, question_id, new)
        return frames

    async def _redo(
        self,
        rights: Awaitable[ChatSession],
        session_id: str,
        question_id: str,
        new: Query | None,
    ) -> tuple[ChatSession, list[dict[str, Any]]]:
        if new is not None:
            validate_query(new, self.options.max_message_chars)

        async def retract(session: ChatSession) -> Query:
            journal = self.deps.journal
            last = await last_turn(journal, session.id)
            if last is None or last.question.id != question_id:
                raise InvalidInput("only the last question can be asked again or edited")
            question, taken = last.question, last.ids[1:]
            if new is not None:
                if await journal.find(session.id, [new["id"]]):
                    raise MessageIdConflict("this message id is already used")
                taken = [question_id, *taken]
            if taken:
                await journal.retract(session.id, taken)
                self.events.publish(session.id, {"type": "retracted", "ids": taken})
            if new is not None:
                await self._unlearn(session, question)
            return new or Query(id=question.id, content=question.content)

        return await self.runs.submit_allowed(rights, session_id, retract)

    async def ask_instead(
        self, session: ChatSession, stopped_id: str, query: Query
    ) -> list[dict[str, Any]]:
        """`ask`, after taking the stopped question `stopped_id` and its answer out of
        the journal (a rollback), in one admission under the thread's lock: no
        other turn runs between the two. Every watcher hears `retracted`."""

        async def take_back(session: ChatSession) -> Query:
            if not await self._take_back(session, stopped_id):
                raise SessionBusy("another turn ran in this session meanwhile; nothing rolled back")
            return query

        _, frames = await self.runs.submit_allowed(already_opened(session), session.id, take_back)
        return frames

    async def roll_back(self, session: ChatSession, stopped_id: str) -> bool:
        """Take the stopped question `stopped_id` and its answer out of the
        journal under the thread's lock (a run cancelled with `rollback`), if it
        is still the thread's last; every watcher hears `retracted`."""
        async with self.locks.hold(session.id, wait_s=ROLL_BACK_WAIT_S):
            return await self._take_back(session, stopped_id)

    async def _take_back(self, session: ChatSession, question_id: str) -> bool:
        """Under the thread's lock: the last turn, if its question is
        `question_id`, out of the journal, and what it taught unlearned."""
        last = await last_turn(self.deps.journal, session.id)
        if last is None or last.question.id != question_id:
            return False
        taken = await self.deps.journal.retract(session.id, last.ids)
        if taken:
            self.events.publish(session.id, {"type": "retracted", "ids": taken})
        await self._unlearn(session, last.question)
        return True

    async def _unlearn(self, session: ChatSession, question: ChatMessage) -> None:
        """A question taken out of the journal (edited, rolled back) no longer
        teaches what it said: what its save learned goes (MemoryStore.unlearn)."""
        if session.user_id is None or question.seq > session.memory_saved_seq:
            return  # nothing learned from it (its save, if owed, reads the journal as it is)
        said = [st.sentence for st in statements(question.content)]
        if said:
            await self.deps.memories.unlearn(session.user_id, session.id, said)

    async def cancel(self, session: ChatSession) -> None:
        await self.events.request_cancel(session.id)

    async def is_running(self, session_id: str) -> bool:
        return await self.runs.is_running(session_id)

    async def window(self, session: ChatSession) -> dict[str, Any]:
        """What the model would see next turn: the checkpointed window and summary."""
        return await read_window(self.deps.graph, self.deps.db.pool, session.id)

    async def messages_after(
        self, session_id: str, after_seq: int, page: int = PAGE
    ) -> AsyncIterator[list[ChatMessage]]:
        """Every journaled message after `after_seq`, page by page (replay, export).

        Lazy: each page is read when the caller asks for it, and no database
        connection is held in between, so a caller holds one page at a time and
        may drop the iterator at any point. Seqs are BIGINTs: past the largest
        there is nothing (and the database could not even compare the number).
        """
        if after_seq >= 2**63 - 1:
            return
        last_seq = max(after_seq, 0)
        while True:
            rows, more = await self.deps.journal.page(session_id, after_seq=last_seq, limit=page)
            if rows:
                yield rows
                last_seq = rows[-1].seq
            if not more:
                return

    # Changing a thread: each under its lock

    async def delete(self, session_id: str, owner: Owner, *, forget: bool = False) -> None:
        """The session, its journal and checkpoints (and with `forget`, its memories)."""
        session = await self.open(session_id, owner)
        async with self.locks.hold(session.id):
            await self.deps.sessions.delete(session.id, owner, forget=forget)
        await self.events.access_changed(session_id=session.id)

    async def copy(self, session: ChatSession) -> ChatSession:
        """A new thread of the same owner holding this one's conversation (the
        Agent Server API's `threads.copy`), to go on from in another direction.
        Taken under the thread's lock (busy while a turn runs: no question is
        copied without its answer). Every message gets a new id, an answer the
        one its new question's id names (graph/nodes.py: answer_id_for), so the
        copy's runs read as the original's."""
        answers: dict[str, str] = {}  # an answer's id here -> its id in the copy

        def renamed(message_id: str, role: str) -> str:
            new = str(uuid.uuid4())
            if role == "user":
                answers[answer_id_for(message_id)] = answer_id_for(new)
                return new
            return answers.pop(message_id, new)

        owner = Owner(user_id=session.user_id, anon_token_hash=session.anon_token_hash)
        async with self.locks.hold(session.id):
            return await self.deps.sessions.copy(session.id, owner, renamed)

    async def keep_latest_checkpoint(self, session: ChatSession) -> None:
        """Drop the thread's checkpoints but its latest (the Agent Server API's
        `threads.prune`), under its lock; with one kept (the default), every
        turn's checkpoint does this already."""
        async with self.locks.hold(session.id):
            await prune_thread(self.deps.db.pool, session.id, keep=1)

    async def discard(self, session: ChatSession) -> None:
        """A stateless run's thread, once its run is over (docs/agent-server-api.md):
        what it taught is saved first, as any thread's turns are, so the user's
        memories keep it; then the thread is deleted. A save that fails is logged
        and the thread deleted all the same (the client asked for no thread)."""
        try:
            await self.memory_saver.save(session.id)
        except Exception:
            log.exception("memory save of a stateless run failed", extra={"session_id": session.id})
        with contextlib.suppress(SessionNotFound):  # deleted meanwhile (the client, an account)
            await self.delete(session.id, Owner(user_id=session.user_id))

    async def claim(self, session_id: str, caller: Caller) -> ChatSession:
        """The caller's anonymous session becomes their account's; its memories follow."""
        user = caller.require_user()
        if caller.anon_token_hash is None:
            raise SessionNotFound("session not found")
        session = await self.open(session_id, Owner(anon_token_hash=caller.anon_token_hash))
        async with self.locks.hold(session.id):
            claimed = await self.deps.sessions.claim(session.id, caller.anon_token_hash, user.id)
        await self.events.access_changed(session_id=session.id)
        self.memory_saver.save_soon(claimed.id, user.id)
        return claimed

    async def merge(self, target_id: str, other_id: str, owner: Owner) -> ChatSession:
        """Move `other`'s messages into `target` in time order; `other` is removed."""
        target, other = await self.open(target_id, owner), await self.open(other_id, owner)
        async with self.locks.hold(target.id, other.id):
            merged = await merge_sessions(self.deps.sessions, target.id, other.id, owner)
        await self.events.access_changed(session_id=other.id)
        return merged

    async def import_file(
        self, owner: Owner, file: IO[bytes], *, progress: Callable[[], object] | None = None
    ) -> ImportReport:
        """A Threadline export or a ChatGPT `conversations.json`: all of it or nothing.

        The file is read and checked a part at a time in a worker thread, or a
        child process when it is large (threads/import_reader.py), so a large or
        hostile file never holds the event loop; the writes stay here, in one
        transaction.
        """
        limits = ImportLimits(
            max_sessions=self.options.max_import_sessions,
            max_depth=self.options.max_json_depth,
            max_message_chars=self.options.max_message_chars,
        )
        held: list[str] = []

        async def hold(session_id: str) -> None:
            """An import extends threads: not while a turn runs in one (busy, nothing written)."""
            if session_id in held:
                return
            if not await self.locks.try_acquire(session_id):
                raise SessionBusy(f"a turn is running in session {session_id}; import it later")
            held.append(session_id)

        try:
            async with aclosing(read_parts(file, import_scope(owner), limits)) as parts:
                return await import_sessions(
                    self.deps.db,
                    owner,
                    parts if progress is None else _ticking(parts, progress),
                    anon_ttl=self.deps.sessions.anon_ttl,
                    extending=hold,
                )
        finally:
            for session_id in held:
                await self.locks.release(session_id)

    async def export(self, session_id: str, owner: Owner) -> tuple[ChatSession, list[ChatMessage]]:
        """The session and every message of it, oldest first."""
        session = await self.open(session_id, owner)
        messages = [m async for page in self.messages_after(session.id, 0) for m in page]
        return session, messages

    async def find_expired(self, owner: Owner | None = None, limit: int = 1000) -> list[Expired]:
        return await find_expired(
            self.deps.db, self.deps.sessions.retention, limit=limit, owner=owner
        )

    async def expire(
        self, owner: Owner | None = None, progress: Callable[[int], object] | None = None
    ) -> int:
        """Delete expired sessions (only `owner`'s when given); returns how many.

        A session whose turn is running is left for the next cleanup.
        """
        removed, busy = 0, set[str]()
        while True:
            found = await self.find_expired(owner, limit=CLEANUP_BATCH + len(busy))
            expired = [e for e in found if e.id not in busy]
            if not expired:
                return removed
            for session in expired:
                try:
                    async with self.locks.hold(session.id):
                        forget = session.forget or self.options.cleanup_forgets_memories
                        await self.deps.sessions.delete(session.id, None, forget=forget)
                except SessionBusy:
                    busy.add(session.id)
                    continue
                except SessionNotFound:
                    continue  # deleted meanwhile by someone else
                await self.events.access_changed(session_id=session.id)
                removed += 1
                if progress is not None:
                    progress(1)


async def _ticking(items: AsyncIterator[T], tick: Callable[[], object]) -> AsyncIterator[T]:
    async for item in items:
        tick()
        yield item
