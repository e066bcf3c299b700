"""Files in ChatGPT's export format (`conversations.json`), for import tests."""

from __future__ import annotations

from typing import Any


def conversation(index: int, texts: list[str], **fields: Any) -> dict[str, Any]:
    """One conversation of ChatGPT's `conversations.json`, user and assistant in turn."""
    mapping: dict[str, Any] = {"root": {"id": "root", "message": None, "parent": None}}
    parent = "root"
    for n, text in enumerate(texts):
        node = f"{index}-{n}"
        role = "user" if n % 2 == 0 else "assistant"
        mapping[node] = {
            "id": node,
            "parent": parent,
            "message": {
                "id": f"msg-{node}",
                "author": {"role": role},
                "create_time": 1714000000 + n,
                "content": {"content_type": "text", "parts": [text]},
            },
        }
        parent = node
    return {
        "id": f"conv-{index}",
        "title": f"conversation {index}",
        "current_node": parent,
        "mapping": mapping,
        **fields,
    }
