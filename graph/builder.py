"""The supervisor graph: initialize -> planning -> execution -> response."""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from graph.context import TurnContext
from graph.nodes import after_execution, execution, initialize, planning, response
from graph.state import ThreadState

Graph = CompiledStateGraph[ThreadState, TurnContext, Any, Any]


def build_graph() -> Graph:
    """Compile the graph without a checkpointer; each run brings its own saver."""
    builder = StateGraph(ThreadState, context_schema=TurnContext)
    builder.add_node("initialize", initialize)
    builder.add_node("planning", planning)
    builder.add_node("execution", execution)
    builder.add_node("response", response)
    builder.add_edge(START, "initialize")
    builder.add_edge("initialize", "planning")
    builder.add_edge("planning", "execution")
    builder.add_conditional_edges("execution", after_execution, ["planning", "response"])
    builder.add_edge("response", END)
    return builder.compile(name="threadline")
