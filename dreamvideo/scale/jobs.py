"""What a jobs file asks for (``dreamvideo batch jobs.yaml``), checked before any job runs.

A jobs file is a list (or a mapping with a ``jobs`` list) of jobs::

    - kind: video                  # image, video or zoom
      input: samples/astronaut-pan.mp4
      output: out/astronaut.mp4
      preset: video                # optional; each kind has its default preset
      set: {video.width: 160}      # optional: any config value, as --set

Every job is checked first (kind, keys, input, output, preset, settings); a broken job is
reported in one line naming it and the key, and the others still run. A job may read an
earlier job's output: it waits for that job (:func:`waves`); a job that would write over what
an earlier one reads is refused. A job whose output is already complete with the same
settings is skipped, unless a job it waits for made its input again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dreamvideo.config import Config
from dreamvideo.errors import UserError
from dreamvideo.media.ffmpeg import read_video_metadata
from dreamvideo.media.images import read_image_metadata
from dreamvideo.media.paths import same_file
from dreamvideo.media.sequence import is_pattern, is_sequence
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
    if output.suffix.lower() not in suffixes and not (kind != "image" and is_pattern(output)):
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
    if job.input is None or job.needs or job.input.is_file() or is_sequence(job.input):
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
