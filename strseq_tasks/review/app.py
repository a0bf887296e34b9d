"""The review page (``strseq review serve``): the queue in a browser, decided with the keyboard.

A FastAPI app over the same functions as ``strseq review``: the queue in teaching order
(``jobs.review_queue``), each suggestion as a character diff, and decisions applied by
``jobs.decide`` (audited, one revertible run per request). One page (``page.html``, no build
step, no outside assets) and a small JSON API:

- ``GET /api/queue`` the open questions matching the filters (``table``, ``column``, ``search``,
  ``max_confidence``, ...), a page at a time, with the queue's progress (decided and open);
- ``POST /api/decide`` ``{"ids": [...], "action": "approve|reject|edit", "value": ..., "note": ...}``;
- ``POST /api/decide-matching`` every open question matching the filters (``dry_run``: the count).

Bound to 127.0.0.1 unless told otherwise. Every POST must carry the page's token (a header a
page from another site cannot set without the server's consent, which it never gives), so a web
page elsewhere cannot decide rows through a reviewer's browser.
"""

from __future__ import annotations

import secrets
from importlib.resources import files
from typing import Literal

import sqlalchemy as sa
from fastapi import FastAPI, Header, HTTPException, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from strseq_tasks.core.metrics import diff_segments
from strseq_tasks.data.db import REVIEW, DatabaseJobError, job_tables
from strseq_tasks.jobs.decide import Decision, decide
from strseq_tasks.jobs.review_queue import QueueFilter, queue

DECIDED = ("approved", "rejected", "edited")


class Filters(BaseModel):
    table: str | None = None
    column: str | None = None
    run_id: str | None = None
    min_confidence: float | None = Field(None, ge=0, le=1)
    max_confidence: float | None = Field(None, ge=0, le=1)
    search: str | None = None
    reason: str | None = None

    def queue_filter(self, status: str = "open") -> QueueFilter:
        given = {name: getattr(self, name) for name in Filters.model_fields}  # not a subclass's own fields
        given["text"] = given.pop("search") or None
        return QueueFilter(status=status, **given)


class DecideBody(BaseModel):
    ids: list[int] = Field(min_length=1)
    action: Literal["approve", "reject", "edit"]
    value: str | None = None
    note: str | None = None


class MatchingBody(Filters):
    action: Literal["approve", "reject"]
    note: str | None = None
    dry_run: bool = False


def create_app(engine: sa.Engine, by: str, schema: str | None = None, token: str | None = None) -> FastAPI:
    """The review app over ``engine``'s strseq tables; decisions are recorded as ``by``'s."""
    # long: the routes are closures over the engine, the token and the reviewer: one per endpoint
    app = FastAPI(title="strseq review", docs_url=None, redoc_url=None, openapi_url=None)
    token = token or secrets.token_urlsafe(24)
    app.state.token = token
    page = files("strseq_tasks.review").joinpath("page.html").read_text(encoding="utf-8")

    def allowed(given: str | None) -> None:
        if not given or not secrets.compare_digest(given, token):
            raise HTTPException(403, "missing or wrong X-Strseq-Token: reload the page")

    def progress(where: Filters) -> dict:
        if not sa.inspect(engine).has_table(REVIEW, schema=schema):
            return {"open": 0, "decided": 0}
        r = job_tables(schema)[1][REVIEW]
        tests = [t for t in where.queue_filter("all").where(r)]
        with engine.connect() as conn:
            counts = dict(conn.execute(sa.select(r.c.status, sa.func.count()).where(*tests)
                                       .group_by(r.c.status)).all())
        return {"open": counts.get("open", 0), "decided": sum(counts.get(s, 0) for s in DECIDED)}

    def decided(result) -> dict:
        return {"applied": result.applied, "changed": result.changed, "runs": result.runs,
                "refused": [{"id": i, "why": why} for i, why in result.refused], "dry_run": result.dry_run}

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return page.replace("{{TOKEN}}", token).replace("{{BY}}", _html(by))

    @app.get("/api/queue")
    def get_queue(table: str | None = None, column: str | None = None, run_id: str | None = None,
                  min_confidence: float | None = Query(None, ge=0, le=1),
                  max_confidence: float | None = Query(None, ge=0, le=1), search: str | None = None,
                  reason: str | None = None, offset: int = Query(0, ge=0), limit: int = Query(50, ge=1, le=500)
                  ) -> dict:
        where = Filters(table=table, column=column, run_id=run_id, min_confidence=min_confidence,
                        max_confidence=max_confidence, search=search, reason=reason)
        total, rows = queue(engine, where.queue_filter(), schema, limit, offset)
        for row in rows:
            row["diff"] = diff_segments(row["value"] or "", row["suggestion"]) if row["suggestion"] is not None \
                else None
        return {"total": total, "offset": offset, "rows": rows, "progress": progress(where)}

    @app.post("/api/decide")
    def post_decide(body: DecideBody, x_strseq_token: str | None = Header(None)) -> dict:
        allowed(x_strseq_token)
        try:
            return decided(decide(engine, [Decision(i, body.action, body.value) for i in body.ids], by, body.note,
                                  schema))
        except DatabaseJobError as exc:
            raise HTTPException(409, str(exc)) from None

    @app.post("/api/decide-matching")
    def post_matching(body: MatchingBody, x_strseq_token: str | None = Header(None)) -> dict:
        allowed(x_strseq_token)
        _, rows = queue(engine, body.queue_filter(), schema, limit=None)
        if not rows:
            return decided_nothing(body.dry_run)
        try:
            return decided(decide(engine, [Decision(r["id"], body.action) for r in rows], by, body.note, schema,
                                  body.dry_run))
        except DatabaseJobError as exc:
            raise HTTPException(409, str(exc)) from None

    def decided_nothing(dry_run: bool) -> dict:
        return {"applied": [], "changed": 0, "runs": [], "refused": [], "dry_run": dry_run}

    return app


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
