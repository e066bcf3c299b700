"""What a person does in the browser, end to end."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Tabs, screenshot
from tests.support.server import ServerProcess

PASSWORD = "correct horse battery"


def answers(page: Page) -> int:
    return page.locator(".msg.assistant:not(.streaming)").count()


def ask(page: Page, text: str) -> str:
    """Send `text` with Enter and return the answer once it is journaled."""
    before = answers(page)
    box = page.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")
    expect(page.locator(".msg.assistant:not(.streaming)")).to_have_count(before + 1)
    expect(page.locator("#stop")).to_be_hidden()
    return page.locator(".msg.assistant:not(.streaming)").last.inner_text()


def register(page: Page, *, via: str = "#account") -> str:
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    page.locator(via).get_by_role("button", name=re.compile("register", re.I)).first.click()
    dialog = page.locator("#auth-dialog")
    dialog.get_by_label("Email").fill(email)
    dialog.get_by_label("Password").fill(PASSWORD)
    dialog.get_by_role("button", name="Register").click()
    expect(page.locator("#account")).to_contain_text(email)
    return email


def wait_for_memory(page: Page, text: str, timeout: float = 15) -> None:
    """Memories are saved just after the answer; wait until this one is there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        memories = page.request.get("/api/memories").json()["memories"]
        if any(text in m["content"] for m in memories):
            return
        time.sleep(0.2)
    raise AssertionError(f"no memory containing {text!r}")


def journal_ids(page: Page, session_id: str) -> list[str]:
    reply = page.request.get(f"/api/sessions/{session_id}/messages?limit=200")
    return [m["id"] for m in reply.json()["messages"]]


def open_session_id(page: Page) -> str:
    match = re.search(r"#/s/([0-9a-f-]{36})", page.url)
    assert match, page.url
    return match.group(1)


def test_anonymous_chat_then_keep_it_by_registering(tabs: Tabs) -> None:
    page = tabs.new()
    page.goto("/")
    expect(page.locator("#anon-note")).to_contain_text("kept for 24 hours")
    expect(page.locator("#anon-note")).to_contain_text("nothing is learned about you long-term")
    assert "remember" in ask(page, "Hi! My name is Ada Lovelace.")
    screenshot(page, "anonymous-chat")
    thread = open_session_id(page)
    register(page, via="#anon-note")
    expect(page.locator("#anon-note")).to_be_hidden()
    expect(page.locator("#thread-list")).to_contain_text("My name is Ada Lovelace")
    expect(page.locator("#log")).to_contain_text("Hi! My name is Ada Lovelace.")
    session = page.request.get(f"/api/sessions/{thread}").json()
    assert session["anonymous"] is False  # claimed into the account
    wait_for_memory(page, "Ada Lovelace")
    page.get_by_role("button", name="New chat").click()
    assert "Your name is Ada Lovelace" in ask(page, "What is my name?")


def test_log_in_chat_reload_and_the_history_is_intact(tabs: Tabs) -> None:
    page = tabs.new()
    page.goto("/")
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    page.request.post("/api/auth/register", data={"email": email, "password": PASSWORD})
    page.locator("#account").get_by_role("button", name="Log in").click()
    page.locator("#auth-dialog").get_by_label("Email").fill(email)
    page.locator("#auth-dialog").get_by_label("Password").fill(PASSWORD)
    page.locator("#auth-dialog").get_by_role("button", name="Log in").click()
    expect(page.locator("#account")).to_contain_text(email)
    ask(page, "First question about **markdown**")
    ask(page, "Second question")
    before = page.locator("#log .msg").all_inner_texts()
    page.reload()
    expect(page.locator("#log .msg")).to_have_count(4)
    assert page.locator("#log .msg").all_inner_texts() == before
    assert page.locator(".msg.user .body").first.inner_text() == "First question about **markdown**"


def test_a_fact_told_in_one_thread_is_recalled_in_a_new_one(tabs: Tabs) -> None:
    page = tabs.new()
    page.goto("/")
    register(page)
    ask(page, "I live in Tromsø and I work on Threadline.")
    first = open_session_id(page)
    wait_for_memory(page, "Tromsø")
    page.get_by_role("button", name="New chat").click()
    assert "You live in Tromsø" in ask(page, "Where do I live?")
    chip = page.locator(".msg.assistant").last.locator(".memories-used summary")
    expect(chip).to_contain_text("used")
    chip.click()
    used = page.locator(".msg.assistant").last.locator(
        ".chip-list li", has_text=re.compile("^User said: I live in Tromsø")
    )
    expect(used).to_be_visible()
    screenshot(page, "memory-chip")
    used.get_by_role("link").click()
    expect(page).to_have_url(re.compile(f"#/s/{first}$"))
    expect(page.locator("#log")).to_contain_text("I live in Tromsø and I work on Threadline.")


def test_api_keys_are_made_once_shown_and_revoked(tabs: Tabs) -> None:
    page = tabs.new()
    page.goto("/")
    register(page)
    page.locator("#account").get_by_role("button", name="API keys").click()
    panel = page.locator("#keys-dialog")
    panel.get_by_label("Key name").fill("my notebook")
    panel.get_by_role("button", name="Make a key").click()
    key = panel.locator("#new-key code").inner_text()
    assert key.startswith("tl_")
    expect(panel.locator(".api-key")).to_contain_text(f"my notebook · {key[:10]}…")
    # the key works as x-api-key (a client with no cookie), the list never shows it again
    search = page.url.split("#")[0].rstrip("/") + "/threads/search"
    assert httpx.post(search, json={}, headers={"x-api-key": key}, timeout=10).status_code == 200
    panel.get_by_role("button", name="Close").click()
    page.locator("#account").get_by_role("button", name="API keys").click()
    expect(panel.locator("#new-key")).to_be_hidden()
    panel.get_by_role("button", name="Revoke key my notebook").click()
    expect(panel.locator(".api-key")).to_have_count(0)
    gone = httpx.post(search, json={}, headers={"x-api-key": key}, timeout=10)
    assert gone.status_code == 401


def test_memory_panel_lists_adds_edits_and_deletes(tabs: Tabs) -> None:
    page = tabs.new()
    page.goto("/")
    register(page)
    page.get_by_role("button", name="What I remember").click()
    panel = page.locator("#memory-dialog")
    panel.get_by_label("New memory").fill("Prefers answers in German")
    panel.get_by_role("button", name="Add").click()
    expect(panel.locator(".memory")).to_contain_text("Prefers answers in German")
    expect(panel.locator(".memory-group")).to_have_text(["About you"])  # no summaries yet
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.type), d.dismiss()))
    panel.get_by_role("button", name=re.compile("^Edit memory")).click()
    field = panel.get_by_role("textbox", name="Memory", exact=True)
    expect(field).to_have_value("Prefers answers in German")  # edited in place
    field.fill("Prefers answers in Korean")
    panel.get_by_role("button", name="Save").click()
    expect(panel.locator(".memory")).to_contain_text("Korean")
    assert dialogs == []  # no window.prompt()
    screenshot(page, "memory-panel")
    panel.get_by_role("button", name=re.compile("^Delete memory")).click()
    expect(panel.locator(".memory")).to_have_count(0)
    assert page.request.get("/api/memories").json()["memories"] == []
    retention = panel.get_by_label(re.compile("^Forget chats"))
    expect(retention).to_have_value("")  # off by default
    with page.expect_response(lambda r: r.request.method == "PATCH") as saved:
        retention.select_option("90")
    assert saved.value.ok and page.request.get("/api/auth/me").json()["retention_days"] == 90


def test_rename_search_export_and_delete(tabs: Tabs, tmp_path: Path) -> None:
    page = tabs.new()
    page.goto("/")
    register(page)
    ask(page, "서울에서 맛집 추천해 주세요")
    seoul = open_session_id(page)
    page.get_by_role("button", name="New chat").click()
    ask(page, "Something else entirely")
    sidebar, menu = page.locator("#thread-list"), page.get_by_role("menu")
    sidebar.get_by_role("button", name=re.compile("^More for 서울")).click()
    menu.get_by_role("menuitem", name="Rename").click()
    sidebar.get_by_role("textbox", name="New title").fill("Seoul food")
    sidebar.get_by_role("textbox", name="New title").press("Enter")
    expect(sidebar.locator(".thread-title", has_text="Seoul food")).to_be_visible()
    page.get_by_label("Search conversations").fill("서울")
    expect(sidebar.locator(".thread")).to_have_count(1)
    expect(sidebar).to_contain_text("Seoul food")
    with page.expect_download() as download:
        sidebar.get_by_role("button", name="More for Seoul food").click()
        menu.get_by_role("menuitem", name="Export as JSON").click()
    exported = json.loads(Path(download.value.path()).read_text())
    assert exported["session"]["id"] == seoul
    assert exported["messages"][0]["content"] == "서울에서 맛집 추천해 주세요"
    with page.expect_download() as markdown:
        sidebar.get_by_role("button", name="More for Seoul food").click()
        menu.get_by_role("menuitem", name="Export as Markdown").click()
    assert "서울에서 맛집 추천해 주세요" in Path(markdown.value.path()).read_text()
    sidebar.get_by_role("button", name="More for Seoul food").click()
    menu.get_by_role("menuitem", name="Delete").click()
    page.locator("#delete-dialog").get_by_label("Also forget what was learned from it").check()
    page.locator("#delete-dialog").get_by_role("button", name="Delete").click()
    expect(sidebar.locator(".thread")).to_have_count(0)
    page.get_by_label("Search conversations").fill("")
    expect(sidebar.locator(".thread")).to_have_count(1)
    assert page.request.get(f"/api/sessions/{seoul}").status == 404


def test_two_tabs_on_one_thread_stay_in_sync(tabs: Tabs) -> None:
    first = tabs.new()
    first.goto("/")
    ask(first, "hello from the first tab")
    second = tabs.new(first.context)
    second.goto(first.url)
    expect(second.locator(".msg")).to_have_count(2)
    ask(first, "and again")
    expect(second.locator(".msg")).to_have_count(4)
    expect(second.locator(".msg.user .body").last).to_have_text("and again")
    ask(second, "now from the second tab")
    expect(first.locator(".msg")).to_have_count(6)
    assert (
        first.locator("#log .msg").all_inner_texts()
        == second.locator("#log .msg").all_inner_texts()
    )


def test_keyboard_and_phone_width(tabs: Tabs) -> None:
    page = tabs.new(viewport={"width": 390, "height": 844})
    page.goto("/")
    expect(page.locator("#sidebar")).not_to_be_in_viewport()
    box = page.get_by_role("textbox", name="Message")
    box.fill("line one")
    box.press("Shift+Enter")
    box.type("line two")
    assert box.input_value() == "line one\nline two"
    box.press("Enter")
    expect(page.locator(".msg.assistant:not(.streaming)")).to_have_count(1)
    expect(page.get_by_role("log")).to_contain_text("line two")
    screenshot(page, "phone")
    page.get_by_role("button", name="Show conversations").click()
    expect(page.locator("#sidebar")).to_be_in_viewport()
    page.locator("#thread-list .thread-open").first.click()
    expect(page.locator("#sidebar")).not_to_be_in_viewport()


def test_server_restart_mid_answer_reconnects_and_matches_the_journal(
    tabs: Tabs, server_database: str, tmp_path: Path
) -> None:
    server = ServerProcess(
        server_database, tmp_path / "restart.log", THREADLINE_OFFLINE_TOKEN_DELAY_MS="60"
    )
    server.start()
    try:
        page = tabs.new(base_url=server.url)
        page.goto(server.url + "/")
        ask(page, "my name is Grace")
        box = page.get_by_role("textbox", name="Message")
        box.fill("please tell me a long story")
        box.press("Enter")
        expect(page.locator(".msg.streaming")).to_be_visible()
        server.kill()
        expect(page.locator("#connection")).to_contain_text("reconnecting")
        page.get_by_label("Search conversations").fill("Grace")  # a request that fails now
        alert = page.get_by_role("alert").filter(has_text="Can't reach the server")
        expect(alert).to_be_visible()
        screenshot(page, "reconnecting")
        server.start()
        # The socket retries with backoff (up to 10 s apart) while the server is down.
        expect(page.locator("#connection")).to_have_text("", timeout=15_000)
        expect(alert).to_be_hidden()  # gone by itself once the server is back
        page.get_by_label("Search conversations").fill("")
        expect(page.locator(".msg.assistant:not(.streaming)")).to_have_count(2, timeout=30_000)
        expect(page.locator("#stop")).to_be_hidden()
        session_id = open_session_id(page)
        shown = page.locator("#log .msg").evaluate_all("nodes => nodes.map(n => n.dataset.id)")
        assert shown == journal_ids(page, session_id)  # nothing lost, nothing doubled
        assert len(shown) == 4
        assert "Grace" in ask(page, "what is my name?")
    finally:
        server.stop()
