"""``dreamvideo doctor``: what this machine will do with dreamvideo."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from dreamvideo.cli.common import app, display, out


@app.command()
def doctor(
    as_json: Annotated[
        bool, typer.Option("--json", help="the findings as JSON, for scripts")
    ] = False,
    timing: Annotated[
        bool, typer.Option("--timing/--no-timing", help="time one ascent step (a few seconds)")
    ] = True,
) -> None:
    """Say what this machine will do: versions, the device and why, GPU, ffmpeg, extras,
    weights, and one ascent step timed with the seconds per 720p frame it suggests.

    Example: dreamvideo doctor
    """
    from dreamvideo.render.doctor import examine

    with display("examining") as shown:
        shown.stage("looking at this machine" + (" and timing an ascent step" if timing else ""))
        report = examine(timing)
    if as_json:
        out.print(json.dumps(report.figures, indent=1, default=str), markup=False, highlight=False)
        return
    width = max(len(name) for name, _ in report.rows)
    for name, value in report.rows:
        out.print(f"{name:<{width}}  {value}", markup=False, highlight=False, soft_wrap=True)
