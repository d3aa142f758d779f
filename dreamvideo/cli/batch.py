"""``dreamvideo batch``: many renders from one jobs file, with a summary table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from dreamvideo.cli.common import Overwrite, app, err, out
from dreamvideo.media.paths import check_input


@app.command()
def batch(
    jobs_file: Annotated[Path, typer.Argument(help="YAML list of jobs", metavar="JOBS")],
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", help="run the jobs on this many Ray workers (dreamvideo[ray])", min=1
        ),
    ] = None,
    ray_address: Annotated[
        str | None, typer.Option("--ray-address", help="join this Ray cluster (or RAY_ADDRESS)")
    ] = None,
    gpus_per_worker: Annotated[
        float | None,
        typer.Option("--gpus-per-worker", help="GPUs each worker asks Ray for", min=0.0),
    ] = None,
    overwrite: Overwrite = False,
) -> None:
    """Render a YAML list of image, video and zoom jobs, skipping finished ones.

    Every job is checked first; a failed job does not stop the others. Each job has kind,
    input, output, and optionally preset and set (a mapping of section.key: value).

    Example: dreamvideo batch jobs.yaml --workers 2
    """
    check_input(jobs_file, "jobs")
    if workers is None and (ray_address or gpus_per_worker is not None):
        from dreamvideo.errors import UserError

        raise UserError("--ray-address and --gpus-per-worker go with --workers N")
    from dreamvideo.scale.batch import run_here, run_on_ray
    from dreamvideo.scale.jobs import read_jobs

    def said(o) -> None:
        err.print(f"{o.job}: {o.status}: {o.detail}", markup=False, highlight=False)

    jobs, outcomes = read_jobs(jobs_file)
    for o in outcomes:
        said(o)
    if workers is None:
        outcomes += run_here(jobs, overwrite, said)
    else:
        outcomes += run_on_ray(jobs, overwrite, workers, ray_address, gpus_per_worker, said)
    outcomes.sort(key=lambda o: o.number)
    table = Table("job", "kind", "status", "seconds", "detail", title=f"{jobs_file}")
    for o in outcomes:
        table.add_row(o.job, o.kind, o.status, f"{o.seconds:.1f}", o.detail)
    out.print(table)
    failed = sum(o.status == "failed" for o in outcomes)
    if failed:
        err.print(f"{failed} of {len(outcomes)} job(s) failed", markup=False)
        raise typer.Exit(1)
