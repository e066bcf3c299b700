"""LangGraph's Agent Server API, driven by the real JS client
`@langchain/langgraph-sdk` (from npm, run by node: tests/js/) against the shared
real server (`server`, tests/conftest.py).

The SDK is pinned to 1.9.24, the newest that runs on Debian 12's Node 18 (what
`.ci/run` installs when node is missing): from 1.9.25 on, the package ships its
bundled ES modules where Node 18 reads them as CommonJS."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import register
from tests.support.server import ROOT, ServerProcess

JS = ROOT / "tests" / "js"
SCRIPT = "stream_conversation.mjs"
QUESTIONS = ["my name is Ada Lovelace", "what is my name?"]
ROLES = {"human": "user", "ai": "assistant"}
CREDENTIALS = ("THREADLINE_API_KEY", "THREADLINE_TOKEN")  # what the script reads


def installed(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed; the JS SDK test needs Node.js 18+ and npm: "
            "apt-get install -y nodejs npm (.ci/run does this)"
        )
    return path


@pytest.fixture(scope="session")
def js_sdk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/js with its locked npm packages, installed once per session outside
    the repo (node resolves packages next to the script, so the script goes too)."""
    node, npm = installed("node"), installed("npm")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    major = int(version.stdout.strip().lstrip("v").split(".")[0])
    if major < 18:
        pytest.fail(f"node {version.stdout.strip()} is too old for the JS SDK test: 18+ needed")
    work = tmp_path_factory.mktemp("js-sdk")
    for name in ("package.json", "package-lock.json", SCRIPT):
        shutil.copy2(JS / name, work / name)
    npm_ci = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"]
    done = subprocess.run(npm_ci, cwd=work, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        pytest.fail(f"npm ci failed in {work}:\n{done.stdout}\n{done.stderr}")
    return work


def new_api_key(server: ServerProcess, headers: dict[str, str]) -> str:
    made = httpx.post(
        f"{server.url}/api/auth/api-keys", json={"name": "js sdk"}, headers=headers, timeout=10
    )
    assert made.status_code == 201, made.text
    key: str = made.json()["key"]
    return key


def converse_in_node(
    js_sdk: Path, server: ServerProcess, credential: dict[str, str]
) -> dict[str, Any]:
    """Run tests/js/stream_conversation.mjs; what it saw, as one JSON object."""
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIALS} | credential
    ran = subprocess.run(
        [installed("node"), SCRIPT, server.url, *QUESTIONS],
        cwd=js_sdk,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, f"node exited {ran.returncode}:\n{ran.stderr}\n{ran.stdout}"
    seen: dict[str, Any] = json.loads(ran.stdout)
    return seen


@pytest.mark.parametrize("credential", CREDENTIALS)
def test_the_js_sdk_streams_a_conversation_and_reads_its_state(
    server: ServerProcess, js_sdk: Path, credential: str
) -> None:
    headers = register(server)
    if credential == "THREADLINE_API_KEY":  # sent as x-api-key
        secret = new_api_key(server, headers)
    else:  # a login token, sent as Authorization: Bearer
        secret = headers["Authorization"].removeprefix("Bearer ")
    seen = converse_in_node(js_sdk, server, {credential: secret})

    state = seen["state"]["messages"]
    assert [(m["type"], m["content"]) for m in state] == [
        ("human", QUESTIONS[0]),
        ("ai", seen["turns"][0]["answer"]),
        ("human", QUESTIONS[1]),
        ("ai", seen["turns"][1]["answer"]),
    ]
    for turn, question, answer in zip(seen["turns"], state[0::2], state[1::2], strict=True):
        assert_streamed(turn, seen["thread_id"], question, answer)
    assert "Ada Lovelace" in seen["turns"][0]["answer"]
    assert "Your name is Ada Lovelace" in seen["turns"][1]["answer"]  # the same thread
    assert [turn["values"] for turn in seen["turns"]] == [state[:2], state]

    # the same thread, as the browser's REST API reads it
    url = f"{server.url}/api/sessions/{seen['thread_id']}"
    session = httpx.get(url, headers=headers, timeout=10).json()
    assert session["title"] == "From the JS SDK" and session["message_count"] == 4
    journal = httpx.get(f"{url}/messages", headers=headers, timeout=10).json()["messages"]
    assert [(m["role"], m["id"], m["content"]) for m in journal] == [
        (ROLES[m["type"]], m["id"], m["content"]) for m in state
    ]


def assert_streamed(
    turn: dict[str, Any], thread_id: str, question: dict[str, Any], answer: dict[str, Any]
) -> None:
    """One turn's stream: metadata first, the answer's chunks, one `updates` per
    node, the journal as `values`, `end` last; all of it naming one run."""
    events = turn["events"]
    assert events[0] == "metadata" and events[-2:] == ["values", "end"], events
    assert events.count("metadata") == 1 and "error" not in events
    # a run is named by its question's id, in the metadata and in Content-Location
    run_id = question["id"]
    assert turn["metadata_run_ids"] == [run_id]
    assert turn["created"] == {"run_id": run_id, "thread_id": thread_id}

    assert turn["chunk_ids"] and set(turn["chunk_ids"]) == {answer["id"]}
    assert set(turn["chunk_run_ids"]) == {run_id}
    assert turn["answer"] == answer["content"] != ""
    assert turn["journaled"] == [answer]  # the complete answer, after its chunks
    first_chunk = events.index("messages")
    assert 0 < first_chunk < events.index("values")

    updates = turn["updates"]
    assert updates[:3] == ["initialize", "planning", "execution"] and updates[-1] == "response"
    assert events.count("updates") == len(updates)
