"""What a client may send over the WebSocket (docs/protocol.md), parsed in one
step (`ClientFrame`), and how a frame that is not one of them is described in
the `error` frame it gets back (app/routes/ws.py).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from app.routes.sessions import SEQ_MAX

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class QueryFrame(BaseModel):
    type: Literal["query"]
    id: str = Field(pattern=UUID_PATTERN)
    content: str


class RegenerateFrame(BaseModel):
    """Ask the last question again; its answer is replaced."""

    type: Literal["regenerate"]
    id: str = Field(pattern=UUID_PATTERN)  # the question


class EditFrame(BaseModel):
    """Replace the last question (and its answer) by `content`, asked as `new_id`."""

    type: Literal["edit"]
    id: str = Field(pattern=UUID_PATTERN)  # the question replaced
    new_id: str = Field(pattern=UUID_PATTERN)
    content: str


class ResumeFrame(BaseModel):
    type: Literal["resume"]
    after_seq: int = Field(ge=0, le=SEQ_MAX)  # a seq is a BIGINT; REST's bound


class CancelFrame(BaseModel):
    type: Literal["cancel"]


class PingFrame(BaseModel):
    type: Literal["ping"]


ClientFrame = TypeAdapter(
    Annotated[
        QueryFrame | RegenerateFrame | EditFrame | ResumeFrame | CancelFrame | PingFrame,
        Field(discriminator="type"),
    ]
)


def describe(exc: ValidationError) -> str:
    """A short, safe description of what is wrong with a frame."""
    problems = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error.get("loc", ()))
        problems.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
    return "; ".join(problems)
