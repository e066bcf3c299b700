"""Files to import, written as Threadline's export writes them."""

from __future__ import annotations

import json

from memory.session_format import FORMAT, VERSION


def export_file(session_id: str, messages: list[tuple[str, str]]) -> bytes:
    """A Threadline export of `messages` (role, text), one minute apart."""
    return json.dumps(
        {
            "format": FORMAT,
            "version": VERSION,
            "session": {
                "id": session_id,
                "title": "Exported",
                "created_at": "2026-01-02T03:04:05+00:00",
            },
            "messages": [
                {
                    "id": f"{session_id[:8]}-{i}",
                    "role": role,
                    "content": text,
                    "seq": i + 1,
                    "created_at": f"2026-01-02T03:0{i}:00+00:00",
                }
                for i, (role, text) in enumerate(messages)
            ],
        }
    ).encode()
