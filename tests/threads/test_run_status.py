"""A run's status (app/routes/agent_runs.py: run_status) is read in several
reads while its turn may end: a turn that ends between them is never read as
cut off (`pending`), whichever read it ends after."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from app.routes.agent_runs import run_status
from memory.journal import Journal
from memory.sessions import Owner
from threads.runtime import Runtime


@pytest.mark.parametrize("ends_after", ["find", "tail"])
async def test_a_turn_ending_between_the_reads_is_running_or_answered(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, ends_after: str
) -> None:
    user = await runtime.users.create(f"{uuid.uuid4().hex[:8]}@example.com", "pw hash", None)
    session = await runtime.deps.sessions.create(Owner(user_id=user.id))
    runs = runtime.agent_runs
    run, _ = await runs.ask(session, {"id": str(uuid.uuid4()), "content": "tell me a story"})
    assert await runtime.threads.is_running(session.id)  # the slow model still streams

    journal = runtime.deps.journal
    read = getattr(Journal, ends_after)

    async def then_the_turn_ends(self: Journal, *args: Any, **kwargs: Any) -> Any:
        found = await read(self, *args, **kwargs)
        await runs.wait_over(session, run.id)  # its answer journaled, the thread free
        return found

    monkeypatch.setattr(journal, ends_after, then_the_turn_ends.__get__(journal))
    status, _, _ = await run_status(runtime.threads, runs, session, run.id)
    monkeypatch.undo()

    assert status in ("running", "success")
    assert (await run_status(runtime.threads, runs, session, run.id))[0] == "success"
