"""The supervisor graph: initialize -> planning -> execution -> response, with
execution looping back to planning after each tool step (docs/design.md)."""

from __future__ import annotations

from typing import Any, cast

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from graph.context import TurnContext
from graph.nodes import (
    after_execution,
    after_planning,
    execution,
    initialize,
    planning,
    response,
)
from graph.state import ThreadState

Graph = CompiledStateGraph[ThreadState, TurnContext, Any, Any]


def build_graph() -> Graph:
    """Compile the graph without a checkpointer; each run brings its own saver."""
    builder = StateGraph(ThreadState, context_schema=TurnContext)
    # Nodes take (state, runtime) positionally, which LangGraph supports but
    # its overloads (keyword-only `runtime`) do not spell out.
    for name, node in (
        ("initialize", initialize),
        ("planning", planning),
        ("execution", execution),
        ("response", response),
    ):
        builder.add_node(name, cast(Any, node))
    builder.add_edge(START, "initialize")
    builder.add_edge("initialize", "planning")
    builder.add_conditional_edges("planning", after_planning, ["execution", "response"])
    builder.add_conditional_edges("execution", after_execution, ["planning", "response"])
    builder.add_edge("response", END)
    return builder.compile(name="threadline")
