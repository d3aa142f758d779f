"""Running the checked jobs of a jobs file (:mod:`dreamvideo.scale.jobs`): here, one after
another with one network kept between them, or on a Ray cluster, pictures and zooms as Ray
tasks side by side and clips chunked across the workers (:mod:`dreamvideo.scale.chunked`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from dreamvideo.errors import UserError
from dreamvideo.media.sequence import is_pattern
from dreamvideo.names import IMAGE_FORMATS, VIDEO_SUFFIXES
from dreamvideo.scale.jobs import BatchJob, Outcome, settled, waves


def run_job(job: BatchJob, overwrite: bool, dreamer: Any = None) -> str:
    """Render one job here; returns what was written."""
    if job.kind == "image":
        from dreamvideo.render.image import render_image

        r = render_image(job.cfg, job.input, job.output, dreamer=dreamer, overwrite=overwrite)
        return f"{r.size[0]}x{r.size[1]} in {r.seconds:.1f} s"
    if job.kind == "video":
        from dreamvideo.scale.chunked import render_clip

        v = render_clip(job.cfg, job.input, job.output, dreamer=dreamer, overwrite=overwrite)
    else:
        from dreamvideo.render.zoom import render_zoom

        v = render_zoom(job.cfg, job.input, job.output, dreamer=dreamer, overwrite=overwrite)
    return f"{v.frames} frames, {v.seconds_per_frame:.2f} s/frame"


def _timed(job: BatchJob, work: Callable[[], str]) -> Outcome:
    t0 = time.perf_counter()
    try:
        detail, status = work(), "done"
    except UserError as e:
        detail, status = str(e), "failed"
    return Outcome(job.number, job.name, job.kind, status, detail, time.perf_counter() - t0)


def run_here(
    jobs: list[BatchJob], overwrite: bool, on_outcome: Callable[[Outcome], None]
) -> list[Outcome]:
    """Run the jobs one after another in this process, one network kept between them."""
    from dreamvideo.render.network import dreamer_for

    outcomes, dreamer = [], None

    def render(job: BatchJob) -> str:
        nonlocal dreamer
        dreamer = dreamer_for(job.cfg.dream, dreamer)
        return run_job(job, overwrite, dreamer)

    done: dict[int, Outcome] = {}
    for job in jobs:  # in the file's order: every job after the jobs it needs
        outcome = settled(job, done) or _timed(job, lambda job=job: render(job))
        on_outcome(outcome)
        outcomes.append(outcome)
        done[job.number] = outcome
    return outcomes


def _remote_job(job: BatchJob, source: bytes | None, threads: int, run: str) -> Any:
    """A picture or zoom rendered on a worker, its input brought as bytes: the picture comes
    back as an ``(H,W,3)`` uint8 array, a zoom as the finished file's bytes (its metadata
    names the job's own input). Its files live in the run's scratch folder on that machine."""
    import tempfile

    from dreamvideo.scale.cluster import scratch_dir

    cfg = job.cfg.override("dream", threads=threads or None)
    folder = scratch_dir(run)
    folder.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dreamvideo-job-", dir=folder) as tmp:
        local = None
        if source is not None and job.input is not None:
            local = Path(tmp) / f"input{job.input.suffix}"
            local.write_bytes(source)
        if job.kind == "image":
            from dreamvideo.render.image import render_image

            return render_image(cfg, local).image
        from dreamvideo.render.zoom import render_zoom

        out = Path(tmp) / f"output{job.output.suffix}"
        render_zoom(cfg, local, out, name=job.input)
        return out.read_bytes()


def run_on_ray(
    jobs: list[BatchJob],
    overwrite: bool,
    workers: int,
    address: str | None,
    gpus: float | None,
    on_outcome: Callable[[Outcome], None],
) -> list[Outcome]:
    """Pictures and zooms as Ray tasks side by side (as many as the workers' resources
    allow), clips chunked across the workers; a job that needs another's output waits for
    it (see :func:`waves`)."""
    from dreamvideo.scale.cluster import connected, scratch, worker_resources

    done: dict[int, Outcome] = {}

    def told(outcome: Outcome) -> None:
        done[outcome.number] = outcome
        on_outcome(outcome)

    key = "\0".join(str(j.output.resolve()) for j in jobs)
    with connected(address) as ray, scratch(ray, key) as run:
        share = worker_resources(ray, workers, gpus)
        task = ray.remote(num_cpus=share.cpus, num_gpus=share.gpus, max_retries=2)(_remote_job)
        for wave in waves(jobs):
            todo = []
            for job in wave:
                outcome = settled(job, done)
                if outcome is None:
                    todo.append(job)
                else:
                    told(outcome)
            threads = int(share.cpus) if not share.gpus else 0
            _run_wave(ray, todo, task, threads, run, overwrite, told)
            for job in (j for j in todo if j.kind == "video"):

                def chunked(job: BatchJob = job) -> str:
                    from dreamvideo.scale.chunked import render_video_chunked

                    r = render_video_chunked(
                        job.cfg, job.input, job.output, workers=workers, gpus_per_worker=gpus,
                        overwrite=overwrite,
                    )  # fmt: skip
                    return f"{r.frames} frames, {r.seconds_per_frame:.2f} s/frame"

                told(_timed(job, chunked))
    return sorted(done.values(), key=lambda o: o.number)


def _run_wave(
    ray: Any,
    jobs: list[BatchJob],
    task: Any,
    threads: int,
    run: str,
    overwrite: bool,
    told: Callable[[Outcome], None],
) -> None:
    """The pictures and zooms of ``jobs`` as Ray tasks side by side, each written here as it
    comes back."""
    from dreamvideo.media.images import write_image
    from dreamvideo.media.paths import check_output, write_atomic
    from dreamvideo.render.loop import run_metadata

    started: dict[Any, tuple[BatchJob, float]] = {}
    for job in (j for j in jobs if j.kind != "video"):
        try:  # a file that is there and not ours is refused before any work
            if is_pattern(job.output):
                raise UserError("frames are rendered without --workers; run this job alone")
            suffixes = list(IMAGE_FORMATS if job.kind == "image" else VIDEO_SUFFIXES)
            check_output(job.output, suffixes, job.kind, job.reads(), overwrite)
        except UserError as e:
            told(Outcome(job.number, job.name, job.kind, "failed", str(e), 0.0))
            continue
        data = job.input.read_bytes() if job.input is not None else None
        started[task.remote(job, data, threads, run)] = (job, time.perf_counter())
    while started:
        ready, _ = ray.wait(list(started), num_returns=1)
        job, t0 = started.pop(ready[0])

        def fetched(ref: Any = ready[0], job: BatchJob = job) -> str:
            try:
                data = ray.get(ref)
            except ray.exceptions.RayTaskError as e:
                cause = e.cause
                raise UserError(
                    str(cause) if isinstance(cause, UserError) else f"{cause!r}"
                ) from None
            if job.kind == "image":
                write_image(job.output, data, run_metadata(job.cfg, job.input, width=None))
                return f"{data.shape[1]}x{data.shape[0]}"
            write_atomic(job.output, data)
            return f"{len(data):,} bytes"

        # the time since the task was sent, not just the download
        told(replace(_timed(job, fetched), seconds=time.perf_counter() - t0))
