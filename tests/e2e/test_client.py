"""The browser client as a person meets it (issue #16, and #13's steps): what the
composer does while an answer runs, what a first visit asks of the server, dark
mode, a phone's width, code blocks, the sidebar's days and menu, the steps of an
answer, and a reload in the middle of an answer."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from playwright.sync_api import ConsoleMessage, Locator, Page, Response, WebSocketRoute, expect

from memory.db import open_database
from memory.journal import Journal, NewMessage
from tests.e2e.conftest import Tabs, screenshot
from tests.e2e.test_browser import ask, register
from tests.support.openai_stub import OpenAIStub, echo_reply, openai_stub, server_on_stub
from tests.support.server import ServerProcess

CODE = "def greet(name):\n    return f'hello {name}'  # say hello"
# Counts the token frames each page receives (the init script runs again on reload).
COUNT_TOKENS = """
window.__tokens = 0;
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(...args) {
    super(...args);
    this.addEventListener("message", (event) => {
      try { if (JSON.parse(event.data).type === "token") window.__tokens += 1; } catch {}
    });
  }
};
"""
# Records every text the streaming bubble shows.
RECORD_STREAMING = """
window.__streamed = [];
new MutationObserver(() => {
  for (const node of document.querySelectorAll(".msg.streaming .body")) {
    window.__streamed.push(node.textContent);
  }
}).observe(document, { subtree: true, childList: true, characterData: true });
"""


@pytest.fixture(scope="module")
def slow_web(
    server_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server whose offline model takes a second a word: an answer runs long
    enough to look at it, and the tests end it with Stop."""
    proc = ServerProcess(
        server_database,
        tmp_path_factory.mktemp("slow") / "server.log",
        THREADLINE_OFFLINE_TOKEN_DELAY_MS="1000",
    )
    proc.start()
    yield proc
    proc.stop()


def problems_of(page: Page) -> list[str]:
    """Console errors and failed requests of `page`, from now on."""
    seen: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            seen.append(f"console: {message.text}")

    def response(reply: Response) -> None:
        if reply.status >= 400:
            seen.append(f"{reply.status} {reply.request.method} {reply.url}")

    page.on("console", console)
    page.on("response", response)
    page.on("requestfailed", lambda request: seen.append(f"failed {request.url}"))
    return seen


def run_in_thread(coroutine: Any) -> None:
    # Playwright's sync API owns this thread's event loop: touch the database from another.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coroutine).result()


def send(page: Page, text: str) -> None:
    box = page.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")


def stop_the_answer(page: Page) -> None:
    page.get_by_role("button", name="Stop").click()
    expect(page.locator(".msg.assistant:not(.streaming)").last).to_contain_text("stopped")
    expect(page.locator("#stop")).to_be_hidden()


def test_a_first_visit_asks_nothing_the_server_refuses(tabs: Tabs) -> None:
    page = tabs.new()
    problems = problems_of(page)
    page.goto("/")
    banner, empty = page.locator("#anon-note"), page.locator("#empty")
    expect(banner).to_be_visible()
    # The banner and the empty state tell the same story.
    for text in ("24 hours", "nothing is learned about you long-term"):
        expect(banner).to_contain_text(text)
        expect(empty).to_contain_text(text)
    expect(page.get_by_role("button", name="Send")).to_be_disabled()
    ask(page, "hello there")
    # The list the answer refreshes is read before the reload, which would abort
    # it (a request failed, seen once in CI), not a refusal by the server.
    page.wait_for_load_state("networkidle")
    page.reload()
    expect(page.locator(".msg")).to_have_count(2)
    page.get_by_role("button", name="New chat").click()
    register(page)
    expect(banner).to_be_hidden()
    expect(empty).to_contain_text("remember it across chats")
    page.get_by_label("Memory on for new chats").uncheck()
    expect(empty).to_contain_text("Memory is off for this chat")
    assert problems == []


def test_send_turns_into_stop_while_an_answer_runs(tabs: Tabs, slow_web: ServerProcess) -> None:
    page = tabs.new(base_url=slow_web.url)
    page.goto("/")
    question = "What is a monad, explained simply?"
    send(page, question)
    stop, send_button = page.get_by_role("button", name="Stop"), page.locator("#send")
    expect(stop).to_be_visible()
    expect(send_button).to_be_hidden()
    # The conversation is named after its question at once, while the answer runs.
    today = page.locator("#thread-list section", has=page.get_by_role("heading", name="Today"))
    expect(today.locator(".thread.current .thread-title")).to_have_text(question)
    expect(page.locator(".msg.streaming")).to_be_visible()
    # Enter while the answer runs keeps the text for later and sends nothing.
    send(page, "and a second question")
    expect(page.get_by_role("textbox", name="Message")).to_have_value("and a second question")
    expect(page.locator(".msg.user")).to_have_count(1)
    expect(stop).to_be_visible()
    stop_the_answer(page)
    expect(send_button).to_be_visible()
    expect(send_button).to_be_enabled()


def test_a_silent_model_is_pointed_out(tabs: Tabs, slow_web: ServerProcess) -> None:
    page = tabs.new(base_url=slow_web.url)
    # The model's silence is made here: the socket holds back the answer's words
    # until the note has been seen, so no real second races the page's clock.
    words = WordGate()
    page.route_web_socket("**/ws/sessions/**", words.route)
    page.clock.install()
    page.goto("/")
    send(page, "tell me something")
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    steps = page.locator("#steps")
    expect(steps).not_to_contain_text("Still waiting")
    page.clock.fast_forward(6000)  # past the five seconds the client waits for a word
    expect(steps).to_have_text("Still waiting for the model…")
    words.open()
    expect(page.locator(".msg.streaming .body")).not_to_be_empty()
    expect(steps).not_to_contain_text("Still waiting")
    stop_the_answer(page)


class WordGate:
    """Routes a page's sockets through the test and holds the server's `token`
    frames back while shut; every other frame passes at once, in order."""

    def __init__(self) -> None:
        self.shut = True
        self.held: list[tuple[WebSocketRoute, str | bytes]] = []

    def route(self, client: WebSocketRoute) -> None:
        server = client.connect_to_server()

        def from_server(frame: str | bytes) -> None:
            if self.shut and isinstance(frame, str) and json.loads(frame).get("type") == "token":
                self.held.append((client, frame))
            else:
                client.send(frame)

        server.on_message(from_server)

    def open(self) -> None:
        self.shut = False
        for client, frame in self.held:
            client.send(frame)
        self.held.clear()


def test_a_reload_mid_answer_shows_the_answer_from_its_start(
    tabs: Tabs, slow_web: ServerProcess
) -> None:
    """Reloaded mid-answer, the page shows what the answer streamed so far and goes
    on from there: never a fragment from its middle, never a placeholder."""
    page = tabs.new(base_url=slow_web.url)
    page.add_init_script(COUNT_TOKENS)
    page.add_init_script(RECORD_STREAMING)
    page.goto("/")
    send(page, "please tell me a long story")
    page.wait_for_function("() => window.__tokens >= 2")
    streaming = page.locator(".msg.streaming .body")
    expect(streaming).to_contain_text("[offline")
    before = streaming.text_content() or ""
    page.reload()
    expect(streaming).to_contain_text(before.strip())  # what it had streamed before
    page.wait_for_function("() => window.__tokens >= 1")  # and a word more
    page.wait_for_function(
        "(before) => document.querySelector('.msg.streaming .body').textContent.length"
        " > before.length",
        arg=before,
    )
    shown = page.evaluate("window.__streamed")
    assert shown and all(text.startswith("[offline") for text in shown), shown
    stop_the_answer(page)
    expect(page.locator(".msg.streaming")).to_have_count(0)
    expect(page.locator(".msg.assistant").last).to_contain_text(before.strip())


def test_dark_mode_follows_the_system(tabs: Tabs) -> None:
    background = "getComputedStyle(document.documentElement).backgroundColor"
    light = tabs.new(color_scheme="light")
    light.goto("/")
    expect(light.locator("#anon-note")).to_be_visible()
    assert light.evaluate(background) == "rgb(247, 247, 248)"
    dark = tabs.new(color_scheme="dark")
    dark.goto("/")
    ask(dark, f"Look at this:\n```python\n{CODE}\n```\nthanks")
    screenshot(dark, "dark")
    assert dark.evaluate(background) == "rgb(20, 22, 26)"
    bubble = dark.locator(".msg.assistant").first
    assert bubble.evaluate("n => getComputedStyle(n).color") == "rgb(230, 232, 235)"
    field = dark.locator("#message").evaluate("n => getComputedStyle(n).backgroundColor")
    assert field == "rgb(35, 39, 46)"


def test_the_composer_fits_a_phone(tabs: Tabs) -> None:
    page = tabs.new(viewport={"width": 390, "height": 844})
    page.goto("/")
    box = page.get_by_role("textbox", name="Message")
    expect(box).to_be_visible()
    # The placeholder fits the box as it is drawn: same width, height and font.
    fits = box.evaluate(
        """box => {
          const probe = box.cloneNode();
          const style = getComputedStyle(box);
          probe.value = box.placeholder;
          probe.style.width = style.width;
          probe.style.height = style.height;
          document.body.append(probe);
          const fits = probe.scrollHeight <= probe.clientHeight
            && probe.scrollWidth <= probe.clientWidth;
          probe.remove();
          return fits;
        }"""
    )
    assert fits, "the placeholder is clipped"
    for part in (page.locator("#composer"), box, page.locator("#send")):
        expect(part).to_be_in_viewport(ratio=1)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    height = box.evaluate("n => n.offsetHeight")
    box.fill("one\ntwo\nthree\nfour")
    assert box.evaluate("n => n.offsetHeight") > height  # it grows with what is typed
    expect(page.locator("#send")).to_be_in_viewport(ratio=1)


def test_code_blocks_are_highlighted_and_copied(tabs: Tabs) -> None:
    page = tabs.new(permissions=["clipboard-read", "clipboard-write"])
    page.goto("/")
    # The offline model quotes the question, so its answer holds this block.
    ask(page, f"Look at this:\n```python\n{CODE}\n```\nthanks")
    answer = page.locator(".msg.assistant").last
    block = answer.locator(".code-block")
    expect(block.locator(".code-lang")).to_have_text("python")
    expect(block.locator("code .hljs-keyword").first).to_have_text("def")
    expect(block.locator("code .hljs-comment")).to_have_text("# say hello")
    keyword = block.locator("code .hljs-keyword").first.evaluate("n => getComputedStyle(n).color")
    assert keyword != block.locator("code").evaluate("n => getComputedStyle(n).color")
    block.get_by_role("button", name="Copy python code").click()
    expect(block.get_by_role("button", name="Copy python code")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == CODE
    answer.get_by_role("button", name="Copy answer").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("[offline model]") and f"```python\n{CODE}\n```" in copied


def set_last_activity(database_url: str, session_id: str, ago: timedelta) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE chat_sessions SET last_activity_at = now() - %s WHERE id = %s",
            (ago, session_id),
        )


def test_sidebar_groups_by_day_and_renames_in_place(tabs: Tabs, server_database: str) -> None:
    page = tabs.new(timezone_id="UTC")
    page.goto("/")
    register(page)
    ages = {"Today": None, "Yesterday": timedelta(days=1), "Previous 7 days": timedelta(days=3),
            "Older": timedelta(days=40)}  # fmt: skip
    for group, ago in ages.items():
        created = page.request.post("/api/sessions", data={"title": f"{group} chat"})
        if ago is not None:
            set_last_activity(server_database, created.json()["id"], ago)
    page.reload()
    sidebar = page.locator("#thread-list")
    expect(sidebar.get_by_role("heading")).to_have_text(list(ages))
    for group in ages:
        section = sidebar.locator("section", has=page.get_by_role("heading", name=group))
        expect(section.locator(".thread-title")).to_have_text([f"{group} chat"])

    menu = page.get_by_role("menu")
    sidebar.get_by_role("button", name="More for Yesterday chat").click()
    expect(menu).to_be_visible()
    expect(menu.get_by_role("menuitem")).to_have_text(
        ["Rename", "Archive", "Export as JSON", "Export as Markdown", "Delete"]
    )
    page.keyboard.press("Escape")
    expect(menu).to_be_hidden()
    expect(sidebar.get_by_role("button", name="More for Yesterday chat")).to_be_focused()

    sidebar.get_by_role("button", name="More for Yesterday chat").click()
    menu.get_by_role("menuitem", name="Rename").click()
    field = sidebar.get_by_role("textbox", name="New title")
    expect(field).to_be_focused()
    expect(field).to_have_value("Yesterday chat")
    field.fill("Not this")
    field.press("Escape")  # cancels
    expect(sidebar).to_contain_text("Yesterday chat")
    sidebar.get_by_role("button", name="More for Yesterday chat").click()
    menu.get_by_role("menuitem", name="Rename").click()
    field.fill("Trip to Seoul")
    with page.expect_response(lambda reply: reply.request.method == "PATCH"):
        field.press("Enter")
    expect(sidebar.locator(".thread-title", has_text="Trip to Seoul")).to_be_visible()
    titles = [s["title"] for s in page.request.get("/api/sessions").json()["sessions"]]
    assert "Trip to Seoul" in titles and "Yesterday chat" not in titles


# What a journaled answer's steps look like (graph/nodes.py writes them).
STEPS = [
    {"node": "initialize", "ms": 2.0},
    {"node": "planning", "plan": "search", "reason": "asks about an earlier talk", "ms": 1.2},
    {"node": "execution", "tools": ["search_past_conversations"], "ms": 3.4},
    {"node": "planning", "plan": "answer", "reason": "found it", "ms": 0.8},
    {"node": "execution", "ms": 40.5},
]
TOOLS = [
    {"name": "search_past_conversations", "args": {"query": "Tromsø"}, "ok": True,
     "result": "1 match: “I live in Tromsø”", "ms": 3.1},
]  # fmt: skip
ARGUMENTS = json.dumps({"query": "Tromsø"}, indent=2, ensure_ascii=False)  # as the page shows them


async def journal_answer(database_url: str, session_id: str, **extra: Any) -> None:
    db = await open_database(database_url, pool_size=2)
    try:
        journal = Journal(db, anon_ttl=timedelta(hours=24))
        await journal.append(session_id, NewMessage(str(uuid.uuid4()), "user", "where do I live?"))
        await journal.append(
            session_id,
            NewMessage(str(uuid.uuid4()), "assistant", "You live in Tromsø.", **extra),
        )
    finally:
        await db.close()


def test_steps_of_a_journaled_answer(tabs: Tabs, server_database: str) -> None:
    page = tabs.new()
    created = page.request.post("/api/sessions", data={})
    session_id = created.json()["id"]
    run_in_thread(journal_answer(server_database, session_id))  # an answer from before steps
    steps_and_plan = {"steps": STEPS, "plan": "answer"}
    run_in_thread(
        journal_answer(server_database, session_id, tools_used=TOOLS, metadata=steps_and_plan)
    )
    page.goto(f"/#/s/{session_id}")
    old, new = page.locator(".msg.assistant").nth(0), page.locator(".msg.assistant").nth(1)
    expect(new).to_contain_text("You live in Tromsø.")
    expect(old.locator(".trace")).to_have_count(0)  # nothing to show, and nothing breaks
    steps = new.locator("details.trace")
    expect(steps.locator("summary").first).to_have_text("Steps · 1 tool")
    expect(steps).not_to_have_attribute("open", "")
    steps.locator("summary").first.click()
    expect(steps.locator(".trace-route")).to_have_text(
        "planning → execution → planning → execution → response"
    )
    expect(steps.locator(".trace-steps li")).to_have_text(
        [
            "planning: search (asks about an earlier talk) · 1.2 ms",
            "execution: search_past_conversations · 3.4 ms",
            "planning: answer (found it) · 0.8 ms",
            "execution · 41 ms",
        ]
    )
    call = steps.locator(".tool-call")
    expect(call.locator("summary")).to_have_text("search_past_conversations · 3.1 ms")
    expect(call.locator("pre").first).to_be_hidden()  # the call itself is collapsed
    call.locator("summary").click()
    expect(call.locator("pre").first).to_have_text(ARGUMENTS)
    expect(call.locator("pre").last).to_have_text("1 match: “I live in Tromsø”")


def test_steps_of_an_answer_live_and_after_reload(tabs: Tabs) -> None:
    page = tabs.new()
    page.goto("/")
    register(page)
    ask(page, "I live in Tromsø.")
    page.get_by_role("button", name="New chat").click()
    ask(page, "Search my past conversations for Tromsø")
    expected_route = "planning → execution → planning → execution → response"

    def check_steps(answer: Locator) -> None:
        steps = answer.locator("details.trace")
        expect(steps.locator("summary").first).to_have_text("Steps · 1 tool")
        steps.locator("summary").first.click()
        expect(steps.locator(".trace-route")).to_have_text(expected_route)
        expect(steps.locator(".trace-steps li").first).to_contain_text("planning: search")
        call = steps.locator(".tool-call")
        expect(call.locator("summary")).to_contain_text("search_past_conversations")
        call.locator("summary").click()
        expect(call.locator("pre").first).to_have_text(ARGUMENTS)
        expect(call.locator("pre").last).to_contain_text("Tromsø")

    answer = page.locator(".msg.assistant").first
    check_steps(answer)
    screenshot(page, "steps")
    ask(page, "thanks")  # an opened box stays open while the conversation goes on
    expect(answer.locator(".trace-route")).to_have_text(expected_route)
    page.reload()  # and the journal shows the same
    expect(page.locator(".msg.assistant")).to_have_count(2)
    check_steps(answer)


def test_errors_are_said_in_words(tabs: Tabs) -> None:
    page = tabs.new()
    page.goto("/")
    page.locator("#account").get_by_role("button", name="Register").click()
    dialog = page.locator("#auth-dialog")
    dialog.get_by_label("Email").fill("ada@example")  # the browser accepts it, the server does not
    dialog.get_by_label("Password").fill("correct horse battery")
    dialog.get_by_role("button", name="Register").click()
    error = dialog.locator(".form-error")
    expect(error).to_have_text("Enter a valid email address, like name@example.com.")
    dialog.get_by_label("Email").fill(f"{uuid.uuid4().hex[:8]}@example.com")
    dialog.get_by_label("Password").fill("password")  # one of the most common
    dialog.get_by_role("button", name="Register").click()
    expect(error).to_have_text("The password is one of the most common passwords; choose another.")


@pytest.fixture(scope="module")
def stub_web(
    server_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, OpenAIStub]]:
    """A server whose model is the local OpenAI-compatible stub (no retries, so a
    failure shows at once)."""
    logs = tmp_path_factory.mktemp("stub") / "server.log"
    with (
        openai_stub(listed_models=["stub-model", "bigger-model"]) as stub,
        server_on_stub(server_database, logs, stub, THREADLINE_MODEL_MAX_RETRIES="0") as proc,
    ):
        yield proc, stub


def test_retry_after_a_model_error(tabs: Tabs, stub_web: tuple[ServerProcess, OpenAIStub]) -> None:
    """The failed question is marked, also after a reload; Retry asks it again under
    its own id, and the thread holds one question and one answer."""
    server, stub = stub_web
    page = tabs.new(base_url=server.url)
    page.goto("/")
    stub.fail(500)
    try:
        send(page, "what is a tern?")
        expect(page.locator("#alert")).to_contain_text("model is unavailable")
        question = page.locator(".msg.user").last
        expect(question.locator(".unanswered")).to_contain_text("Not answered.")
        page.reload()  # the journal says it too
        expect(question.locator(".unanswered")).to_contain_text("Not answered.")
    finally:
        stub.recover()
    question.get_by_role("button", name="Retry").click()
    expect(page.locator(".msg.assistant").last).to_contain_text("stub says: what is a tern?")
    expect(page.locator(".unanswered")).to_have_count(0)
    page.reload()
    expect(page.locator(".msg.assistant")).to_have_count(1)
    expect(page.locator(".msg.user")).to_have_count(1)
    expect(page.locator(".unanswered")).to_have_count(0)


def test_the_model_picker_chooses_per_chat(
    tabs: Tabs, stub_web: tuple[ServerProcess, OpenAIStub]
) -> None:
    """The stub lists two models: the chat asks the one picked, keeps it after a
    reload, and a new chat starts with the last one picked."""
    server, stub = stub_web
    page = tabs.new(base_url=server.url)
    page.goto("/")
    picker = page.get_by_label("Model", exact=True)
    expect(picker).to_be_visible()
    expect(picker.locator("option")).to_have_text(["stub-model", "bigger-model"])
    expect(picker).to_have_value("stub-model")
    picker.select_option("bigger-model")
    send(page, "which model?")
    expect(page.locator(".msg.assistant").last).to_contain_text("stub says: which model?")
    chats = [r for r in stub.requests if r.path.endswith("/chat/completions")]
    assert chats[-1].body["model"] == "bigger-model"
    page.reload()
    expect(page.locator(".msg.assistant")).to_have_count(1)  # the chat is open again
    expect(picker).to_have_value("bigger-model")
    with page.expect_response(lambda r: r.request.method == "PATCH") as saved:
        picker.select_option("stub-model")  # changed mid-chat: the next turn uses it
    assert saved.value.ok
    send(page, "and now?")
    expect(page.locator(".msg.assistant").last).to_contain_text("stub says: and now?")
    chats = [r for r in stub.requests if r.path.endswith("/chat/completions")]
    assert chats[-1].body["model"] == "stub-model"
    page.get_by_role("button", name="New chat").click()
    expect(picker).to_have_value("stub-model")


def test_regenerate_and_edit_the_last_turn(
    tabs: Tabs, stub_web: tuple[ServerProcess, OpenAIStub]
) -> None:
    """Regenerate replaces the last answer, Edit the last question and its answer;
    after a reload the journal shows the same, nothing doubled."""
    server, stub = stub_web
    page = tabs.new(base_url=server.url)
    page.goto("/")
    send(page, "name a bird")
    answers, questions = page.locator(".msg.assistant"), page.locator(".msg.user")
    expect(answers.last).to_contain_text("stub says: name a bird")
    stub.reply = lambda messages: "a tern"
    try:
        page.get_by_role("button", name="Regenerate").click()
        expect(answers.last).to_contain_text("a tern")
    finally:
        stub.reply = echo_reply
    expect(answers).to_have_count(1)
    expect(questions.last.get_by_role("button", name="Copy message")).to_be_visible()
    page.get_by_role("button", name="Edit").click()
    editor = page.get_by_role("textbox", name="Edit your message")
    expect(editor).to_have_value("name a bird")
    editor.fill("name a fish")
    page.get_by_role("button", name="Save and send").click()
    expect(answers.last).to_contain_text("stub says: name a fish")
    expect(questions).to_have_count(1)
    expect(questions.last).to_contain_text("name a fish")
    page.reload()
    expect(answers).to_have_count(1)
    expect(questions).to_have_count(1)
    expect(answers.last).to_contain_text("stub says: name a fish")
    expect(page.get_by_role("button", name="Regenerate")).to_be_visible()
