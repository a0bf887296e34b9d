"""``strseq demo``: a demo CRM on SQLite; retrain three models, clean the table, close the human
loop (a scripted reviewer decides the first questions, the retrain learns them, clean again)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Annotated

import typer

from strseq_tasks.cli.common import (
    QuietOpt,
    RowsProgress,
    app,
    check_output_option,
    fail,
    setup_logging,
)
from strseq_tasks.runner.server_guard import guard_temporary_server

# The demo's held-out sets have about 30 clean values each, where one changed value is 3.3%:
# the default gate (2%) would refuse any model that changes one. Scheduled retrains keep 2%.
DEMO_MAX_HARM = 0.05


SMOKE_SIZES = {"emb_dim": 16, "case_dim": 4, "enc_hidden": 24, "dec_hidden": 48, "attn_dim": 24, "loc_filters": 4,
               "loc_kernel": 3}


def _prepare(folder: Path, force: bool) -> None:
    """An empty demo folder. With --force, only a previous demo's files are removed."""
    if folder.exists() and any(folder.iterdir()):
        if not force:
            fail(f"{folder} exists and is not empty: pass --force to replace a previous demo there, "
                  "or --out for another folder")
        leftovers = [p.name for p in folder.iterdir() if p.name not in ("crm.db", "models")]
        if leftovers:
            fail(f"{folder} holds files that are not a strseq demo's ({', '.join(sorted(leftovers)[:5])}): "
                  "not touching it; choose another --out")
        (folder / "crm.db").unlink(missing_ok=True)
        shutil.rmtree(folder / "models", ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)


@app.command()
def demo(
    folder: Annotated[Path, typer.Option("--out", help="Folder to write the demo database and registry to.")] = Path("strseq-demo"),
    rows: Annotated[int, typer.Option(min=20, max=100_000, help="Customers in the demo table.")] = 1000,
    pairs: Annotated[int, typer.Option("--pairs-per-field", min=40, max=5000, help="Curated pairs per field.")] = 200,
    minutes: Annotated[float, typer.Option("--max-minutes", min=0.1, help="Training time budget per model, in minutes (the three train side by side).")] = 4.0,
    seed: Annotated[int, typer.Option(help="Random seed (the demo's data and its trainings).")] = 0,
    review: Annotated[int, typer.Option(min=0, max=1000, help="Questions per column the scripted reviewer answers "
                                        "before the second retrain (0: no human loop).")] = 10,
    force: Annotated[bool, typer.Option("--force", help="Replace a previous demo in --out.")] = False,
    quiet: QuietOpt = False,
    smoke: Annotated[bool, typer.Option("--smoke", hidden=True, help="Tests: tiny fp32 models, gates any model passes.")] = False,
) -> None:
    """The whole job on SQLite in a few minutes: a dirty `customers` table and curated pairs,
    the retraining flow for names, birth dates and phone numbers (publishing version 1 of each
    to a registry), the cleaning flow on every column, with a before/after report; then the human
    loop: a scripted reviewer answers the first --review questions of each column's queue, the
    retrain learns from those decisions, and the cleaning flow runs again."""
    # long: the demo's story in order (build, retrain, clean, the loop, report), one step a few lines
    setup_logging(quiet)
    check_output_option("--out", folder, folder=True, replaced=False)
    try:
        from strseq_tasks.demo.crm import CUSTOMERS, FIELDS, PAIRS, build_demo_database, db_url
        from strseq_tasks.flows.clean import clean as clean_flow
    except ImportError as exc:
        fail(f"the demo needs the train, flows and demo extras ({exc}): pip install 'strseq[train,flows,demo]'",
              code=1)
    guard_temporary_server()
    from strseq_tasks.jobs.clean import watch_progress
    from strseq_tasks.jobs.clean_params import CleanParams

    started = time.monotonic()
    folder = folder.resolve()
    _prepare(folder, force)
    os.environ.setdefault("STRSEQ_GX_DIR", str(folder / "gx"))  # the demo's validation results, beside its registry
    url, registry = db_url(folder), str(folder / "models")
    steps = 4 if review else 3
    typer.echo(f"== 1/{steps} building the demo CRM in {folder / 'crm.db'}")
    counts = build_demo_database(folder, rows=rows, pairs=pairs, seed=seed)
    typer.echo(f"   {CUSTOMERS}: {counts[CUSTOMERS]:,} rows with dirty {', '.join(f.column for f in FIELDS)}")
    typer.echo(f"   {PAIRS}: {counts[PAIRS]:,} curated (dirty, clean) pairs, {pairs} per field")
    typer.echo(f"\n== 2/{steps} retraining {', '.join(repr(f.model) for f in FIELDS)} side by side (flow strseq-retrain), "
               f"up to {minutes:g} min each; promoted if held-out exact match >= 50% and harm <= "
               f"{DEMO_MAX_HARM:.0%}")
    for field in FIELDS:
        typer.echo(f"   {field.model}: {field.what}")
    trained = _retrain_all(url, registry, minutes, seed, smoke)
    for field in FIELDS:
        result = trained[field.column]
        verdict = "promoted to production" if result["promoted"] else "NOT promoted"
        typer.echo(f"\n   {field.model} version {result['version']} {verdict}: held-out exact match "
                   f"{result['metrics']['exact_match']:.1%}, harm {result['metrics']['harm']:.1%} "
                   f"({result['heldout']['pairs']} pairs)")
        for reason in result["reasons"]:
            typer.echo(f"     {reason}")
    cleaned = {}
    for field in FIELDS:
        if not trained[field.column]["promoted"]:
            typer.echo(f"\n   skipping {CUSTOMERS}.{field.column}: '{field.model}' did not pass its gates")
            continue
        typer.echo(f"\n== 3/{steps} cleaning {CUSTOMERS}.{field.column} -> {field.column}_clean with "
                   f"{field.model}@production")
        params = CleanParams(db=url, table=CUSTOMERS, key="id", column=field.column,
                             model=f"{registry}/{field.model}@production", output_column=f"{field.column}_clean",
                             create_output_column=True)
        with RowsProgress(quiet, field.column) as progress, watch_progress(progress):
            cleaned[field.column] = clean_flow(params)
    looped = _human_loop(url, registry, cleaned, rows, pairs, minutes, seed, smoke, review, quiet) \
        if review and cleaned else None
    _summary(folder, url, registry, trained, cleaned, time.monotonic() - started, looped)
    if not cleaned:
        fail(f"no model passed its gates, so nothing was cleaned: train longer (--max-minutes, now {minutes:g})",
              code=1)


def _retrain_all(url: str, registry: str, minutes: float, seed: int, smoke: bool = False,
                 fields: tuple | None = None, decisions: bool = False) -> dict[str, dict]:
    """The retraining flow for every field, concurrently (a flow run each, in threads: torch
    releases the GIL, so two models train on a 2-core machine in little more than the time of one).
    ``decisions``: each learns from the people's decisions about its column too."""
    from concurrent.futures import ThreadPoolExecutor

    from prefect import flow

    from strseq_tasks.demo.crm import CUSTOMERS, FIELDS, pairs_query
    from strseq_tasks.flows.retrain import retrain as retrain_flow
    from strseq_tasks.jobs.retrain import RetrainParams

    @flow(name="strseq-demo-start")
    def start() -> None:
        """Starts Prefect's temporary server once, before the concurrent runs use it."""

    start()
    gates, sizes, precision = {"max_harm": DEMO_MAX_HARM}, {}, "int8"
    if smoke:  # the plumbing, not the accuracy: a model trained for seconds must pass (fp32: no int8 check)
        gates, sizes, precision = {"min_exact_match": 0.0, "max_harm": 1.0}, SMOKE_SIZES, "fp32"
    fields = fields or FIELDS
    params = {f.column: RetrainParams(pairs=url, pairs_query=pairs_query(f), registry=registry, name=f.model,
                                      max_minutes=minutes, seed=seed, gates=gates, model_sizes=sizes,
                                      max_epochs=3 if smoke else 40, precision=precision,
                                      **({"decisions": url, "decisions_table": CUSTOMERS,
                                          "decisions_column": f"{f.column}_clean"} if decisions else {}))
              for f in fields}
    with ThreadPoolExecutor(len(fields), thread_name_prefix="retrain") as pool:
        futures = {column: pool.submit(retrain_flow, p) for column, p in params.items()}
        return {column: future.result() for column, future in futures.items()}


def _scripted_review(url: str, columns: list[str], rows: int, pairs: int, seed: int, per_column: int) -> dict:
    """The first ``per_column`` questions of each column's queue (teaching order), answered as a
    person who knows the right value would: approve a right suggestion, reject one whose input was
    right, edit the rest. Through ``jobs.decide``: audited, revertible, recorded as decisions."""
    from collections import Counter

    from strseq_tasks.data.db import create_engine
    from strseq_tasks.demo.crm import CUSTOMERS, FIELDS, true_values
    from strseq_tasks.jobs.decide import Decision, decide
    from strseq_tasks.jobs.review_queue import QueueFilter, queue

    engine = create_engine(url)
    answered = {}
    try:
        for field in (f for f in FIELDS if f.column in columns):
            truth = true_values(field, rows, pairs, seed)
            _, asked = queue(engine, QueueFilter(table=CUSTOMERS, column=f"{field.column}_clean"), limit=per_column)
            decisions = []
            for row in asked:
                right = truth[int(row["key"])]
                action = "reject" if right == row["value"] else "approve" if right == row["suggestion"] else "edit"
                decisions.append(Decision(row["id"], action, right if action == "edit" else None))
            if decisions:
                decide(engine, decisions, "demo reviewer", "scripted by strseq demo")
            answered[field.column] = Counter(d.action for d in decisions)
    finally:
        engine.dispose()
    return answered


def _human_loop(url: str, registry: str, cleaned: dict, rows: int, pairs: int, minutes: float, seed: int,
                smoke: bool, per_column: int, quiet: bool) -> dict:
    """Step 4: review (scripted), retrain with the decisions, clean again; what changed."""
    from strseq_tasks.data.db import create_engine
    from strseq_tasks.demo.crm import CUSTOMERS, FIELDS
    from strseq_tasks.flows.clean import clean as clean_flow
    from strseq_tasks.jobs.clean import watch_progress
    from strseq_tasks.jobs.clean_params import CleanParams
    from strseq_tasks.jobs.review_queue import QueueFilter, queue

    typer.echo(f"\n== 4/4 the human loop: a reviewer answers the first {per_column} questions of each queue "
               "(most useful first), the retrain learns the answers, the columns are cleaned again")
    answered = _scripted_review(url, list(cleaned), rows, pairs, seed, per_column)
    done = {"approve": "approved", "reject": "rejected (the input was right)", "edit": "edited"}
    for column, counts in answered.items():
        typer.echo(f"   {column}: " + (", ".join(f"{n} {done[a]}" for a, n in sorted(counts.items()))
                                       + " by 'demo reviewer'" if counts else "no question to answer"))
    fields = tuple(f for f in FIELDS if f.column in cleaned)
    retrained = _retrain_all(url, registry, minutes, seed, smoke, fields, decisions=True)
    again = {}
    for field in fields:
        result = retrained[field.column]
        verdict = ("PROMOTED" if result["promoted"] else "not promoted") if result["published"] else "unchanged"
        typer.echo(f"   {field.model} version {result['version']}: {verdict}")
        params = CleanParams(db=url, table=CUSTOMERS, key="id", column=field.column,
                             model=f"{registry}/{field.model}@production", output_column=f"{field.column}_clean")
        with RowsProgress(quiet, field.column) as progress, watch_progress(progress):
            again[field.column] = clean_flow(params)
    engine = create_engine(url)
    try:  # the questions still open, whatever the second run asked anew
        still = {f.column: queue(engine, QueueFilter(table=CUSTOMERS, column=f"{f.column}_clean"), limit=1)[0]
                 for f in fields}
    finally:
        engine.dispose()
    return {"answered": answered, "retrained": retrained, "cleaned": again, "open": still}


def _summary(folder: Path, url: str, registry: str, trained: dict, cleaned: dict, seconds: float,
             looped: dict | None = None) -> None:
    typer.echo(f"\n== done in {seconds / 60:.1f} min. Before -> after ([-removed-]{{+added+}}):")
    for column, result in cleaned.items():
        typer.echo(f"\n  {column}:")
        for row in result["sample"][:6]:
            typer.echo(f"    id {row['key']:>5}: {row['diff']}   (confidence {row['confidence']})")
    typer.echo("\n  column        held-out exact  harm    changed  to review  unchanged  empty")
    for column, result in cleaned.items():
        metrics = trained[column]["metrics"]
        typer.echo(f"  {column:<13} {metrics['exact_match']:>14.1%} {metrics['harm']:>6.1%} {result['changed']:>9,} "
                   f"{result['review']:>10,} {result['unchanged']:>10,} {result['skipped']:>6,}")
    if looped:
        typer.echo("\n  the human loop       answered  model version  changed again  left alone (decided)  "
                   "open questions before -> after")
        for column, result in looped["cleaned"].items():
            version = looped["retrained"][column]["version"]
            typer.echo(f"  {column:<20} {sum(looped['answered'][column].values()):>8} {version:>14} "
                       f"{result['changed']:>14,} {result['decided']:>21,}  "
                       f"{cleaned[column]['review']:,} -> {looped['open'][column]:,}")
    runs = " ".join(r["run_id"] for r in cleaned.values())
    gx = os.environ.get("STRSEQ_GX_DIR", str(folder / "gx"))
    quality = ("not kept (STRSEQ_GX_DIR=ephemeral)" if gx == "ephemeral" else
               f"{Path(gx) / 'uncommitted' / 'data_docs' / 'local_site' / 'index.html'}  (GX Data Docs: each validation)")
    typer.echo(f"""
Where to look
  the database        {folder / 'crm.db'}  (customers.*_clean, strseq_audit, strseq_review, strseq_runs)
  the registry        strseq models list --registry {registry} --name names
                      (each version's report.md, metrics.json and training plot are in its folder)
  data quality        {quality}
  to review           strseq review list --db {url}   (then approve, reject or edit: strseq review --help)
  to undo a run       strseq revert --db {url} --run-id RUN_ID   (this demo's runs: {runs or 'none'})
  Prefect's UI        prefect server start, then open http://127.0.0.1:4200 (flow runs, logs, artifacts)""")
