"""``strseq serve``: the package's deployments (flows/prefect.yaml), served from one process."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from strseq_tasks.cli.common import (
    app,
    fail,
    setup_logging,
)
from strseq_tasks.runner.server_guard import guard_temporary_server


@app.command()
def serve(
    prefect_file: Annotated[Path | None, typer.Option(help="The deployments to serve (default: the ones shipped with strseq, deploy/prefect.yaml in a checkout).")] = None,
    demo: Annotated[Path | None, typer.Option("--demo", help="Run the jobs against this `strseq demo` folder (fills the STRSEQ_* variables that are not set).")] = None,
    only: Annotated[list[str] | None, typer.Option("--only", help="Serve only these deployments (by name).")] = None,
) -> None:
    """Serve the deployments of PREFECT_FILE, with their parameters, schedules, triggers and
    concurrency limits, from this process (Prefect's `serve`: no work pool or worker needed).
    Stop with Ctrl-C."""
    setup_logging(False)
    from strseq_tasks.runner.deployments import (
        PREFECT_FILE,
        DeploymentFileError,
        demo_environment,
        load_deployments,
        placeholders,
        runner_deployments,
    )

    prefect_file = prefect_file or PREFECT_FILE
    if demo is not None:
        if not (demo / "crm.db").is_file():
            fail(f"{demo} is not a strseq demo folder (no crm.db): run `strseq demo --dir {demo}` first")
        for name, value in demo_environment(demo).items():
            if name not in os.environ:
                os.environ[name] = value  # the flows resolve env:NAME references in this process
                typer.echo(f"{name}={value}  (from the demo; set it to override)")
    try:
        specs = load_deployments(prefect_file)
        if only:
            unknown = sorted(set(only) - {s.name for s in specs})
            if unknown:
                fail(f"{prefect_file} has no deployment named {', '.join(unknown)}")
            specs = [s for s in specs if s.name in only]
        deployments = runner_deployments(specs)
    except DeploymentFileError as exc:
        missing = [v for v in placeholders(prefect_file) if v not in os.environ]
        hint = f" (unset: {', '.join(missing)}; or pass --demo DIR)" if missing else ""
        fail(f"{exc}{hint}")
    home = os.environ.get("STRSEQ_HOME")
    if home:
        os.chdir(home)  # as the file's pull step does for workers: relative paths resolve there
    for spec in specs:
        typer.echo(f"serving {spec.name}: {spec.entrypoint}, {spec.when()}")
    from prefect import serve as prefect_serve
    from prefect.settings import PREFECT_API_URL

    guard_temporary_server()

    # Without a server, Prefect's temporary one stops with this process (Ctrl-C reaches both):
    # pausing the deployments on the way out would only fail against it.
    prefect_serve(*deployments, pause_on_shutdown=bool(PREFECT_API_URL.value()))
