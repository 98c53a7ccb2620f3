"""The app in a real browser: Debian's headless chromium driven by playwright.

What the API tests cannot see: the sign-in page, the leaderboard's rows as rendered (gradio 6's
Dataframe draws virtualised rows, ``[role=row]`` / ``[role=gridcell]``), the demo's answer and
highlighted explanation after typing, the Compare tab's verdict, the Chat tab's streamed answer
beside the classification demo. Screenshots are saved under the test's temp folder
(``leaderboard.png``, ``demo.png``, ``compare.png``, ``chat.png``) for a person to look at.

The browser is Debian's ``chromium`` package (``scripts/setup.sh dev`` installs it when run as
root); playwright's Python package drives it through ``executable_path`` and never downloads a
browser of its own.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.gen_fixtures import tiny_llama_dir  # noqa: F401  (fixture)
from tests.test_chat_tab import chat_store  # noqa: F401  (the fixture: a chat variant beside a classifier)
from tests.test_compare_tab import B_ID, compare_store  # noqa: F401  (the fixture: two rows on the same data)
from tests.test_ui import LABELS, VARIANT_ID, free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                                reason="Debian's chromium is not installed: `apt-get install chromium` "
                                       "(scripts/setup.sh dev does it when run as root)")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def app_url(compare_store):  # noqa: F811
    from hub.ui.app import launch
    from hub.ui.auth import load_auth

    port = free_port()
    demo = launch(compare_store, port=port, prevent_thread_lock=True, auth=load_auth(["ann:team pass"], None))
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@pytest.fixture
def page(tmp_path, request):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a test extra: scripts/setup.sh dev")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS,
                                    env={**os.environ, "HOME": str(tmp_path)})
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        new = context.new_page()
        new.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            yield new
            assert errors == [], f"the page raised in the browser: {errors[:3]}"
        finally:
            context.close()
            browser.close()


def _sign_in(page, url: str) -> None:
    page.goto(url)
    page.get_by_label("username").fill("ann")
    page.get_by_label("password").fill("team pass")
    page.get_by_role("button", name="Login").click()


def _visible(locator):
    return locator.locator("visible=true")


def test_sign_in_leaderboard_demo_and_compare(page, app_url, tmp_path):
    page.goto(app_url)
    page.get_by_label("username").fill("ann")
    page.get_by_label("password").fill("wrong")
    page.get_by_role("button", name="Login").click()
    page.get_by_text("Incorrect Credentials").wait_for()          # gradio's own refusal
    _sign_in(page, app_url)

    # the leaderboard's rows as the page draws them
    page.locator("[role=gridcell]", has_text=VARIANT_ID).first.wait_for()
    page.wait_for_timeout(2000)        # for the screenshot only: the page-load refresh lands (no spinner)
    cells = page.locator("[role=gridcell]").all_inner_texts()
    assert VARIANT_ID in cells and B_ID in cells
    page.screenshot(path=str(tmp_path / "leaderboard.png"), full_page=True)

    # the demo: type, submit, see the answer, who answered it and the highlighted explanation
    page.get_by_role("tab", name="Demo").click()
    box = _visible(page.locator("label", has_text="Text").locator("textarea")).first
    box.fill("the band played a new song on their world tour")
    _visible(page.get_by_role("button", name="Submit")).first.click()
    _visible(page.get_by_text("Answered by")).first.wait_for()
    answer = _visible(page.get_by_test_id("label-output-value")).first.inner_text()
    assert answer.strip() in LABELS
    explained = _visible(page.get_by_test_id("highlighted-text:textfield").filter(has_text="band")).first
    explained.wait_for()                                           # the words, each coloured by its attribution
    assert explained.inner_text().split() == "the band played a new song on their world tour".split()
    page.screenshot(path=str(tmp_path / "demo.png"), full_page=True)

    # compare: the two rows scored on the same data, and the verdict in words
    page.get_by_role("tab", name="Compare").click()
    for which, ref in (("Row A", VARIANT_ID), ("Row B", B_ID)):
        picker = _visible(page.get_by_label(which, exact=True)).first
        picker.fill(ref)
        picker.press("Enter")
    _visible(page.get_by_role("button", name="Compare", exact=True)).first.click()
    _visible(page.get_by_text("McNemar")).first.wait_for()
    page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)
    print(f"screenshots in {tmp_path}")


@pytest.fixture(scope="module")
def chat_url(chat_store):  # noqa: F811
    from hub.ui.app import launch

    port = free_port()
    demo = launch(chat_store[0], port=port, prevent_thread_lock=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


def test_chat_tab_streams_an_answer_beside_the_classification_demo(page, chat_url, chat_store, tmp_path):
    from tests.test_chat_tab import reference

    store, variant, engine = chat_store   # the Chat tab starts on the newest engine that passed parity
    page.goto(chat_url)
    # a store of two tasks: the leaderboard says so, and each task has its demo tab
    _visible(page.get_by_text("This table mixes 2 tasks")).first.wait_for()
    page.screenshot(path=str(tmp_path / "leaderboard-two-tasks.png"), full_page=True)
    assert _visible(page.get_by_role("tab", name="Demo")).count() == 1

    page.get_by_role("tab", name="Chat").click()
    question = "My printer is not printing, what do I do?"
    _visible(page.get_by_label("Message")).first.fill(question)
    _visible(page.get_by_role("button", name="Send")).first.click()
    _visible(page.get_by_text("Answered by")).first.wait_for()
    line = _visible(page.get_by_text("Answered by")).first.inner_text()
    assert "tiny-support" in line and f"on engine {engine}" in line and "tokens/s" in line
    bubbles = _visible(page.get_by_test_id("bot")).all_inner_texts()
    expected = reference(store, variant, [{"role": "user", "content": question}], 128, engine=engine)
    assert bubbles and bubbles[-1].split() == expected.split()
    assert question in _visible(page.get_by_test_id("user")).first.inner_text()
    page.screenshot(path=str(tmp_path / "chat.png"), full_page=True)
    print(f"screenshots in {tmp_path}")
