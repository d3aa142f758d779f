"""``dreamvideo batch jobs.yaml``: many renders from one file, checked before any starts.

A jobs file is a list (or a mapping with a ``jobs`` list) of jobs::

    - kind: video                  # image, video or zoom
      input: samples/astronaut-pan.mp4
      output: out/astronaut.mp4
      preset: video                # optional; each kind has its default preset
      set: {video.width: 160}      # optional: any config value, as --set

Every job is checked first (kind, keys, input, output, preset, settings); a broken job is
reported in one line naming it and the key, and the others still run. A job whose output is
already complete with the same settings is skipped. Without workers the jobs run here one
after another; with ``--workers`` they run on a Ray cluster: pictures and zooms as Ray tasks,
clips chunked across the workers (:mod:`dreamvideo.scale.chunked`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dreamvideo.config import Config
from dreamvideo.errors import UserError
from dreamvideo.media.ffmpeg import read_video_metadata
from dreamvideo.media.images import read_image_metadata
from dreamvideo.media.paths import same_file
from dreamvideo.names import IMAGE_FORMATS, VIDEO_SUFFIXES
from dreamvideo.presets import load_preset, read_yaml_file, set_values
from dreamvideo.text import excerpt

KINDS = {"image": "default", "video": "video", "zoom": "zoom"}  # kind -> default preset
KEYS = ("kind", "input", "output", "preset", "set")
MAX_JOBS = 10_000


@dataclass(frozen=True)
class BatchJob:
    """One checked job."""

    number: int  # 1-based, as the user counts
    kind: str
    input: Path | None
    output: Path
    cfg: Config
    needs: tuple[int, ...] = ()  # earlier jobs whose outputs this one reads

    @property
    def name(self) -> str:
        return job_name(self.number, {"output": str(self.output)})

    def reads(self) -> tuple[tuple[str, str | Path | None], ...]:
        """Every file the job reads, named for messages: its input and its settings' files."""
        return (("input", self.input), *self.cfg.reads())


@dataclass(frozen=True)
class Outcome:
    number: int  # the job's place in the file
    job: str
    kind: str
    status: str  # "done", "skipped" or "failed"
    detail: str  # what was written, or why it failed
    seconds: float


def job_name(number: int, raw: Any) -> str:
    """How a job is named in messages: its number and, when it has one, its output."""
    if isinstance(raw, dict) and isinstance(raw.get("output"), str):
        return f"job {number} ({excerpt(raw['output'], 80, quote=False)})"
    return f"job {number}"


def _job(number: int, raw: Any, base: Path) -> BatchJob:
    """Check one raw job; :class:`UserError` says which key is wrong and what is accepted."""
    if not isinstance(raw, dict):
        raise UserError(f"expected a mapping with {', '.join(KEYS)}, got {excerpt(raw)}")
    unknown = [k for k in raw if k not in KEYS]
    if unknown:
        raise UserError(f"unknown key {excerpt(unknown[0])}; valid keys: {', '.join(KEYS)}")
    kind = raw.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise UserError(f"kind must be one of {', '.join(KINDS)}; got {excerpt(kind)}")
    if not isinstance(raw.get("output"), str) or not raw["output"].strip():
        raise UserError("output: a file name is required")
    output = base / raw["output"]
    suffixes = IMAGE_FORMATS if kind == "image" else VIDEO_SUFFIXES
    if output.suffix.lower() not in suffixes:
        raise UserError(
            f"output: {kind} jobs write {', '.join(suffixes)} files, got {excerpt(output.name)}"
        )
    source = raw.get("input")
    if source is None and kind != "zoom":
        raise UserError(f"input: a {kind} job needs an input file")
    if source is not None:
        if not isinstance(source, str):
            raise UserError(f"input: expected a file name, got {excerpt(source)}")
        source = base / source
    preset = raw.get("preset", KINDS[kind])
    sets = raw.get("set") or {}
    if not isinstance(sets, dict):
        raise UserError("set: expected a mapping of section.key: value")
    cfg = set_values(load_preset(str(preset)), sets)
    return BatchJob(number, kind, source, output, cfg)


def read_jobs(path: Path) -> tuple[list[BatchJob], list[Outcome]]:
    """The jobs of ``path`` that pass their checks, and a failed outcome for each that does
    not. Paths in the file are relative to the file's folder."""
    data = read_yaml_file(path, "jobs file")
    if isinstance(data, dict) and set(data) == {"jobs"}:
        data = data["jobs"]
    if not isinstance(data, list) or not data:
        raise UserError(f"{path}: expected a list of jobs (or a mapping with a 'jobs' list)")
    if len(data) > MAX_JOBS:
        raise UserError(f"{path}: {len(data):,} jobs; at most {MAX_JOBS:,}")
    jobs, failed = [], []
    for number, raw in enumerate(data, 1):
        try:
            jobs.append(_job(number, raw, path.parent))
        except UserError as e:
            kind = raw.get("kind", "?") if isinstance(raw, dict) else "?"
            failed.append(Outcome(number, job_name(number, raw), str(kind), "failed", str(e), 0.0))
    outputs = [j.output.resolve() for j in jobs]
    for job in jobs:
        if outputs.count(job.output.resolve()) > 1:
            raise UserError(f"{path}: {job.name}: another job writes the same output")
    linked, refused = _linked(jobs)
    kept, bad = [], set()
    for job in linked:  # in order: a job's needs are settled before it
        lost = [n for n in job.needs if n in bad]
        why = refused.get(job.number) or _missing_input(job)
        if lost:
            why = f"needs the output of job {lost[0]}, which failed"
        if why is None:
            kept.append(job)
        else:
            failed.append(Outcome(job.number, job.name, job.kind, "failed", why, 0.0))
            bad.add(job.number)
    return kept, failed


def _linked(jobs: list[BatchJob]) -> tuple[list[BatchJob], dict[int, str]]:
    """The jobs with what each waits for (the earlier jobs that write a file it reads), and
    why each job that writes a file an EARLIER job reads is refused: that job would read
    the file as it was, and this one would then destroy it, ``-y`` or not."""
    refused: dict[int, str] = {}
    linked = []
    for job in jobs:
        needs = []
        for what, path in job.reads():
            for other in jobs:
                if path is None or other is job or not same_file(other.output, Path(path)):
                    continue
                if other.number < job.number:
                    needs.append(other.number)
                else:
                    refused.setdefault(
                        other.number,
                        f"output {other.output} is the {what} of {job.name}, which comes first; "
                        "a batch never writes over a file one of its jobs reads (not even "
                        "with -y): move the job before it, or choose another output",
                    )
        linked.append(replace(job, needs=tuple(sorted(set(needs)))))
    return linked, refused


def _missing_input(job: BatchJob) -> str | None:
    """Why ``job`` cannot start: its input is not there and no earlier job makes it."""
    if job.input is None or job.needs or job.input.is_file():
        return None
    return f"input: file {job.input} does not exist"


def complete(job: BatchJob) -> bool:
    """Whether ``job.output`` already holds this job's render (same settings and input)."""
    if not job.output.is_file():
        return False
    read = read_image_metadata if job.kind == "image" else read_video_metadata
    meta = read(job.output)
    source = str(job.input) if job.input is not None else None
    return bool(meta) and meta.get("config") == job.cfg.to_dict() and meta.get("source") == source


def run_job(job: BatchJob, overwrite: bool, dreamer: Any = None) -> str:
    """Render one job here; returns what was written."""
    if job.kind == "image":
        from dreamvideo.render.image import render_image

        r = render_image(job.cfg, job.input, job.output, dreamer=dreamer, overwrite=overwrite)
        return f"{r.size[0]}x{r.size[1]} in {r.seconds:.1f} s"
    if job.kind == "video":
        from dreamvideo.render.clip import render_video

        v = render_video(job.cfg, job.input, job.output, dreamer=dreamer, overwrite=overwrite)
    else:
        from dreamvideo.render.zoom import render_zoom

        v = render_zoom(job.cfg, job.input, job.output, dreamer=dreamer, overwrite=overwrite)
    return f"{v.frames} frames, {v.seconds_per_frame:.2f} s/frame"


def settled(job: BatchJob, before: dict[int, Outcome]) -> Outcome | None:
    """The outcome of ``job`` without rendering it, given the outcomes ``before`` of the jobs
    it needs: failed when one of them failed, skipped when its output is already complete
    and none of its inputs was made again; ``None``: it must be rendered."""
    failed = [n for n in job.needs if before[n].status == "failed"]
    if failed:
        why = f"needs the output of job {failed[0]}, which failed"
        return Outcome(job.number, job.name, job.kind, "failed", why, 0.0)
    remade = any(before[n].status == "done" for n in job.needs)
    if not remade and complete(job):
        return Outcome(job.number, job.name, job.kind, "skipped", "already complete", 0.0)
    return None


def waves(jobs: list[BatchJob]) -> list[list[BatchJob]]:
    """The jobs in groups that may run side by side: each after every job it needs."""
    depth: dict[int, int] = {}
    for job in jobs:  # a job needs only earlier ones, so one pass in order suffices
        depth[job.number] = 1 + max((depth.get(n, 0) for n in job.needs), default=-1)
    return [[j for j in jobs if depth[j.number] == d] for d in sorted(set(depth.values()))]


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
