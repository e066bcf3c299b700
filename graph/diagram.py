"""Print the compiled graph as Mermaid, for docs/design.md:

.venv/bin/python -m graph.diagram
"""

from graph.builder import build_graph

if __name__ == "__main__":
    print(build_graph().get_graph().draw_mermaid())
