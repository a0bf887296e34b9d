"""The review page in a real browser: `strseq review serve` as a user starts it, headless Chromium
(Debian's `chromium`, driven by Playwright, no browser download) approving, rejecting, editing and
bulk-approving with the keyboard and the filter bar; the database shows each decision and its
audit row. Without Chromium the test skips, except under CI, where it fails."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
import sqlalchemy as sa
from fixtures.tables import people

from integration.cli_harness import ONE_THREAD
from strseq_tasks.core.shapes import Familiar, shapes_of
from strseq_tasks.data.db import AUDIT, DECISIONS, REVIEW, reflect_table
from strseq_tasks.jobs.clean import clean_table
from strseq_tasks.jobs.clean_report import ModelIdentity
from strseq_tasks.serve.runtime import Prediction

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ROWS = {1: "SMITH John", 2: "JONES Mary", 3: "lee, ann", 4: "BROWN Zoë", 5: "o'neil peter", 6: "Ray, Bob"}


def browser():
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs Debian's chromium for the review page's browser test (.ci/run installs it)")
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    return sync_api.sync_playwright()


def unsure(texts):
    """A stand-in model: title case at confidence 0.3 to 0.6 (every row goes to review)."""
    return [Prediction(" ".join(reversed(t.replace(",", "").split())).title(), 0.3 + 0.05 * len(t) % 0.3, "ok")
            for t in texts]


@pytest.fixture
def queued(database_url):
    engine = sa.create_engine(database_url)
    people(engine, ROWS.items())
    # the model's pairs: no "ë", no "Name, Name" layout, which the page says of such rows
    pairs = [("SMITH John", "John Smith"), ("JONES Mary", "Mary Jones"), ("BROWN Zoe", "Zoe Brown"),
             ("lee, ann", "Ann Lee"), ("o'neil peter", "Peter O'Neil")]
    familiar = Familiar.of(frozenset(shapes_of(a for a, _ in pairs)), pairs)
    clean_table(engine, reflect_table(engine, "people", "id", "name", "name_clean", create_output=True),
                ModelIdentity("names", 1, "sha-1", familiar), unsure)
    yield engine
    engine.dispose()


@pytest.fixture
def served(queued, database_url):
    """`strseq review serve` on a free port, as a user runs it; yields its address."""
    env = {**os.environ, **ONE_THREAD, "PYTHONIOENCODING": "utf-8"}
    proc = subprocess.Popen([sys.executable, "-m", "strseq_tasks.cli", "review", "serve", "--db", database_url,
                             "--port", "0", "--by", "ana"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        line = proc.stdout.readline()
        assert line.startswith("review page: http://127.0.0.1:"), line + proc.stderr.read()
        yield line.split()[2]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def column(engine) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(sa.text("SELECT id, name_clean FROM people ORDER BY id")).all())


def rows_of(engine, table: str) -> list[dict]:
    t = sa.Table(table, sa.MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(t).order_by(t.c.id)).mappings()]


def test_approve_reject_edit_and_bulk_approve_in_the_browser(queued, served, tmp_path):
    with browser() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = chromium.new_page(viewport={"width": 1200, "height": 520})
        page.goto(served)
        page.wait_for_selector("tr.picked")
        assert page.locator("#counts").inner_text() == "0 of 6 decided · 6 open here"
        # what set a row apart from the pairs, under its suggestion
        why = lambda value: page.locator("tr", has_text=value).locator(".why")  # noqa: E731
        assert why("BROWN Zoë").inner_text() == "unlike the pairs: character no pair held: 'ë'"
        assert why("Ray, Bob").inner_text() == ("unlike the pairs: a layout no pair showed (Aa, Aa); "
                                                "character no pair held: 'b'")
        assert why("JONES Mary").count() == 0
        page.screenshot(path=str(tmp_path / "review-page.png"))
        if os.environ.get("STRSEQ_SCREENSHOT"):  # the docs' screenshot: STRSEQ_SCREENSHOT=docs/review-page.png
            shutil.copy(tmp_path / "review-page.png", os.environ["STRSEQ_SCREENSHOT"])
        by_id = {r["id"]: r for r in rows_of(queued, REVIEW)}

        def picked() -> int:
            return int(page.locator("tr.picked").get_attribute("data-id"))

        def decided(text: str) -> None:
            page.wait_for_function("t => document.getElementById('message').textContent.startsWith(t)", arg=text)

        approved = picked()  # the first question in teaching order
        page.keyboard.press("a")
        decided(f"approved #{approved}")
        rejected = picked()
        page.keyboard.press("r")
        decided(f"rejected #{rejected}")
        page.keyboard.press("j")
        edited = picked()
        page.keyboard.press("e")
        page.locator("input.edit").fill("Peter O'Neil")
        page.keyboard.press("Enter")
        decided(f"edited #{edited}")
        page.wait_for_function("() => document.getElementById('counts').textContent.startsWith('3 of 6 decided')")
        page.fill("input[name=search]", "a")  # a filtered group: every open value holding an "a"
        page.click("button[type=submit]")
        page.wait_for_function("() => document.body.dataset.shown === 'search=a'")
        matching = [int(x) for x in page.locator("#rows tr").evaluate_all("rows => rows.map(r => r.dataset.id)")]
        page.click("#approve-all")
        page.wait_for_selector("#confirm-count:visible")
        assert page.locator("#confirm-count").inner_text() == str(len(matching))
        page.click("#confirm-yes")
        decided(f"approved {len(matching)} row(s)")
        chromium.close()
    decisions = {d["review_id"]: (d["action"], d["value"], d["decided_by"]) for d in rows_of(queued, DECISIONS)}
    assert decisions[approved] == ("approve", by_id[approved]["suggestion"], "ana")
    assert decisions[rejected] == ("reject", by_id[rejected]["value"], "ana")
    assert decisions[edited] == ("edit", "Peter O'Neil", "ana")
    assert set(decisions) == {approved, rejected, edited, *matching} and len(matching) >= 1
    written = {a["key"]: (a["new_value"], a["model_name"]) for a in rows_of(queued, AUDIT)}
    edited_key = int(by_id[edited]["key"])
    assert column(queued)[edited_key] == "Peter O'Neil" and written[str(edited_key)] == ("Peter O'Neil", "person")
    assert column(queued)[int(by_id[rejected]["key"])] is None  # rejected: the original stays, nothing written
    assert len(written) == len(decisions) - 1  # every decision but the rejection wrote its value, audited


def test_a_post_without_the_pages_token_decides_nothing(queued, served):
    request = urllib.request.Request(served + "api/decide", method="POST", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"ids": [1], "action": "approve"}).encode())
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 403
    assert not rows_of(queued, DECISIONS)


def test_serve_on_a_port_in_use_is_one_error_line(queued, database_url):
    import socket

    from integration.cli_harness import run_strseq

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        refused = run_strseq("review", "serve", "--db", database_url, "--port", port, timeout=120)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.strip().splitlines() == [f"error: cannot listen on 127.0.0.1:{port} (Address already in "
                                                   "use): choose another --port"]
