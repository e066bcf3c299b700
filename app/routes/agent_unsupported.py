"""The Agent Server API's calls Threadline does not make (docs/agent-server-api.md,
"What differs"): each answers what it is and why it is not there, as
`not_supported`, instead of a bare 404 or 405 that reads like a typo in the
client's URL. 405 (with the methods the path has) where the path is one of
ours; 404 where there is no such thing here at all (crons).

Not in the OpenAPI schema: they are not part of the API, only its signposts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.errors import error_body

router = APIRouter(include_in_schema=False)

_ONE_ASSISTANT = (
    "there is one assistant, `threadline`, the graph every thread runs; it is not "
    "created, changed or deleted"
)
_UPDATE_STATE = (
    "threads.update_state is not supported: a thread's state is its journal, written "
    "only by its runs (a run from the last question's checkpoint edits or regenerates it)"
)
_RUN_DELETE = (
    "runs.delete is not supported: a run is its question and answer in the thread's "
    "journal; cancel it with action=rollback to take them out"
)
_CRONS = "crons are not supported: runs start when they are asked for"

# path, its methods not supported, the methods it has (405), or () (404), why
_UNSUPPORTED: tuple[tuple[str, tuple[str, ...], tuple[str, ...], str], ...] = (
    ("/assistants", ("POST",), (), f"assistants.create is not supported: {_ONE_ASSISTANT}"),
    (
        "/assistants/{assistant_id}",
        ("PATCH", "DELETE"),
        ("GET",),
        f"assistants.update and assistants.delete are not supported: {_ONE_ASSISTANT}",
    ),
    ("/threads/{thread_id}/state", ("POST", "PATCH"), ("GET",), _UPDATE_STATE),
    ("/threads/{thread_id}/runs/{run_id}", ("DELETE",), ("GET",), _RUN_DELETE),
    ("/threads/{thread_id}/runs/crons", ("POST",), (), _CRONS),
    ("/runs/crons", ("POST",), (), _CRONS),
    ("/runs/crons/search", ("POST",), (), _CRONS),
    ("/runs/crons/count", ("POST",), (), _CRONS),
    ("/runs/crons/{cron_id}", ("PATCH", "DELETE"), (), _CRONS),
)


def _answer(has: tuple[str, ...], why: str) -> Callable[[], Awaitable[JSONResponse]]:
    async def not_supported() -> JSONResponse:
        if not has:
            return JSONResponse(error_body("not_supported", why), status_code=404)
        allow = ", ".join(has)
        return JSONResponse(
            error_body("not_supported", why), status_code=405, headers={"Allow": allow}
        )

    return not_supported


for _path, _methods, _has, _why in _UNSUPPORTED:
    router.add_api_route(_path, _answer(_has, _why), methods=list(_methods))
