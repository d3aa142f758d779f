"""Workers on a Ray cluster: one actor per worker holds the network once and renders chunk
after chunk; a worker that dies has its chunk handed to a fresh one, possibly on another
machine. Ray is the optional extra ``dreamvideo[ray]``, imported only here.

Without an address a local Ray instance is started for the command and shut down after it;
with one (``--ray-address`` or ``RAY_ADDRESS``) the render joins that cluster. The clip
travels through Ray's object store, so the machines need no shared filesystem.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dreamvideo.config import Config
from dreamvideo.errors import UserError
from dreamvideo.media.owned import clear_parts, parts_pattern
from dreamvideo.scale.lanes import LaneProgress, render_lanes
from dreamvideo.scale.worker import ChunkJob, ChunkResult

ATTEMPTS = 3  # tries per chunk before the render gives up
PROGRESS_EVERY = 0.5  # seconds between a worker's progress messages
CLEAN_SECONDS = 30  # at most this long to remove a render's files on every machine


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UserError("--workers needs Ray: pip install 'dreamvideo[ray]'") from None
    return ray


@contextlib.contextmanager
def connected(address: str | None) -> Iterator[Any]:
    """Ray, connected to ``address`` (or ``RAY_ADDRESS``), or to a local instance started
    for this block and shut down after it."""
    ray = _ray()
    address = address or os.environ.get("RAY_ADDRESS") or None
    if ray.is_initialized():  # a caller (a test, a notebook) already connected
        yield ray
        return
    try:
        if address:
            ray.init(address=address, log_to_driver=False, logging_level="ERROR")
        else:
            ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise UserError(f"cannot reach the Ray cluster at {address}: {e}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


SOURCE_PREFIX = "dreamvideo-source-"  # a worker machine's copy of the clip, by its digest
# what a run keeps in its scratch folder (see dreamvideo.media.owned): the clip's copy (and
# the temporary name it is written under), and the folders each chunk and job works in
SCRATCH_FILES = parts_pattern(rf"{SOURCE_PREFIX}[0-9a-f]{{16}}(\.\w+)?(\.\d+)?")
SCRATCH_FOLDERS = re.compile(r"dreamvideo-(chunk|job)-\w+")


def scratch_dir(run: str) -> Path:
    """This machine's folder for the worker files of one render (or batch): the clip's copy,
    the chunks' parts while they are encoded, a job's input and output."""
    return Path(tempfile.gettempdir()) / f"dreamvideo-run-{run}"


def _remove_scratch(run: str) -> None:
    """Remove what this run (or a killed run of the same output) left on this machine."""
    folder = scratch_dir(run)
    if folder.is_dir() and not folder.is_symlink():
        clear_parts(folder, SCRATCH_FILES, SCRATCH_FOLDERS)


@contextlib.contextmanager
def scratch(ray: Any, key: str) -> Iterator[str]:
    """A name for the worker files of the run ``key`` names (its output), and when the block
    ends, however it ends, those files removed from every machine of the cluster: a killed
    worker cleans up nothing, so a task on each machine (and this process, for its own) does
    it for the whole run. The name follows from ``key``, so a resume after a killed driver
    takes over, and then removes, what that driver left."""
    run = hashlib.sha256(f"{socket.gethostname()}\0{key}".encode()).hexdigest()[:16]
    try:
        yield run
    finally:
        _remove_scratch(run)
        with contextlib.suppress(Exception):  # a machine that went away keeps nothing of ours
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            clean = ray.remote(num_cpus=0, max_retries=0)(_remove_scratch)
            refs = [
                clean.options(
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
                ).remote(run)
                for node in ray.nodes()
                if node.get("Alive")
            ]
            ray.wait(refs, num_returns=len(refs), timeout=CLEAN_SECONDS)


@dataclass(frozen=True)
class Progress:
    """One worker's latest report."""

    worker: int
    chunk: int
    done: int  # frames of the chunk finished
    total: int
    fps: float  # frames per second of this chunk so far
    node: str  # the machine (Ray node id, shortened)
    gpus: str = ""  # the GPUs Ray gave the worker ("0", "0,1"; "" for none)
    device: str = ""  # where its network runs ("cuda:0", "cpu")


class _Worker:
    """The actor: the clip and the network are loaded once, chunks rendered one at a time."""

    def __init__(
        self, cfg: Config, source: bytes, suffix: str, slot: int, queue: Any, run: str
    ) -> None:
        import ray

        from dreamvideo.render.network import dreamer_for

        self.slot, self.queue = slot, queue
        self.node = ray.get_runtime_context().get_node_id()[:8]
        self.scratch = scratch_dir(run)
        self.scratch.mkdir(exist_ok=True)
        digest = hashlib.sha256(source).hexdigest()[:16]
        self.source = self.scratch / f"{SOURCE_PREFIX}{digest}{suffix}"
        if not self.source.exists():  # one copy per machine, shared by its workers
            tmp = self.source.with_name(f"{self.source.name}.{os.getpid()}")
            tmp.write_bytes(source)
            tmp.replace(self.source)
        self.dreamer = dreamer_for(cfg.dream)
        # Ray gives a worker its GPUs by setting CUDA_VISIBLE_DEVICES: it sees them as
        # cuda:0, ...; where torch finds no CUDA, the worker dreams on the CPU (said once)
        self.gpus = ",".join(str(g) for g in ray.get_gpu_ids())
        self.device = str(self.dreamer.device)

    def about(self) -> dict[str, str]:
        """Where the worker runs and on what: its pid, node, the GPUs Ray gave it, what
        CUDA_VISIBLE_DEVICES says, and the device its network chose."""
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
        return {"pid": str(os.getpid()), "node": self.node, "gpus": self.gpus,
                "visible": visible, "device": self.device}  # fmt: skip

    def render(self, jobs: list[ChunkJob]) -> list[ChunkResult]:
        """One wave of chunks, dreamed together in lanes (:mod:`dreamvideo.scale.lanes`)."""
        last: dict[int, float] = {}
        results: list[ChunkResult] = []

        def report(p: LaneProgress) -> None:
            now = time.perf_counter()
            if now - last.get(p.chunk, 0.0) >= PROGRESS_EVERY or p.done == p.total:
                last[p.chunk] = now
                self.queue.put_nowait(Progress(self.slot, p.chunk, p.done, p.total, p.fps,
                                               self.node, self.gpus, self.device))  # fmt: skip

        render_lanes(
            jobs, self.source, self.dreamer, len(jobs), results.append, report, self.scratch
        )
        where = {"node": self.node, "pid": str(os.getpid())}
        return [replace(result, worker=where) for result in results]


@dataclass(frozen=True)
class Share:
    """What each worker asks Ray for, and how many such workers the cluster holds at once."""

    cpus: float
    gpus: float
    fits: int


def worker_resources(ray: Any, workers: int, gpus: float | None) -> Share:
    """What each worker asks for: an equal share of the cluster's cores (at least one), and
    one GPU where the cluster has GPUs unless ``gpus`` says otherwise.

    A worker that no machine can hold would wait for one forever: that is one line naming
    what the cluster has, before any worker starts. Workers beyond what the machines hold
    at once would wait as long (a worker keeps its share while it lives), so ``fits`` says
    how many to start."""
    total = ray.cluster_resources()
    cpus = max(1, int(total.get("CPU", 1)) // workers)
    if gpus is None:
        gpus = 1.0 if total.get("GPU", 0) >= 1 else 0.0
    machines = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    able = [m for m in machines if m.get("GPU", 0) >= gpus and m.get("CPU", 0) >= 1]
    if not able:
        raise UserError(
            f"--gpus-per-worker {gpus:g}: no machine of the Ray cluster has "
            f"{'a GPU' if gpus <= 1 else f'{gpus:g} GPUs'} ({_inventory(machines)}); "
            "use --gpus-per-worker 0 to render on the CPUs"
        )
    cpus = min(cpus, max(int(m.get("CPU", 0)) for m in able))

    def held(m: dict[str, float]) -> int:
        by_gpu = int(m.get("GPU", 0) // gpus) if gpus else workers
        return min(int(m.get("CPU", 0) // cpus), by_gpu)

    return Share(float(cpus), float(gpus), max(1, sum(held(m) for m in able)))


def _inventory(machines: list[dict[str, float]]) -> str:
    """``1 machine: 2 CPUs, no GPU``: what the cluster's machines have, for a message."""
    if not machines:
        return "no machine is connected"
    each = [
        f"{int(m.get('CPU', 0))} CPUs, " + (f"{m['GPU']:g} GPU(s)" if m.get("GPU") else "no GPU")
        for m in machines
    ]
    shown = "; ".join(each[:4]) + ("; ..." if len(each) > 4 else "")
    return f"{len(machines)} machine{'s' if len(machines) > 1 else ''}: {shown}"


def run_chunks(
    ray: Any,
    cfg: Config,
    source: Path,
    waves: list[list[ChunkJob]],
    workers: int,
    gpus: float | None,
    on_result: Callable[[ChunkResult], None],
    on_progress: Callable[[Progress, int], None] | None = None,
    key: str | None = None,
) -> list[str]:
    """Render every wave of jobs on ``workers`` actors, a wave at a time on each (its chunks
    as lanes of one batch; ``key`` names the run's scratch files, default: the source),
    ``on_result`` as each chunk lands (in any order). ``on_progress(progress, pid)`` hears
    each worker's reports. A wave whose worker dies is given to a fresh worker, up to
    ``ATTEMPTS`` times. Returns notes on retries.
    Whichever way it ends, the workers are stopped and their files removed everywhere."""
    from ray.util.queue import Queue

    share = worker_resources(ray, workers, gpus)
    threads = int(share.cpus) if share.gpus == 0 else cfg.dream.threads
    worker_cfg = cfg.override("dream", threads=threads)
    actor = ray.remote(num_cpus=share.cpus, num_gpus=share.gpus, max_restarts=0)(_Worker)
    notes = []
    if share.fits < workers:
        notes.append(
            f"the Ray cluster holds {share.fits} worker(s) of {share.cpus:g} CPU(s)"
            + (f" and {share.gpus:g} GPU" if share.gpus else "")
            + f" at once; {share.fits} rendered instead of {workers}"
        )
        workers = share.fits
    with scratch(ray, key or str(source.resolve())) as run:
        clip = ray.put(source.read_bytes())
        queue = Queue()

        def start(slot: int) -> Any:
            return actor.remote(worker_cfg, clip, source.suffix, slot, queue, run)

        slots = [start(k) for k in range(workers)]
        try:
            return notes + _dispatch(ray, slots, start, waves, queue, on_result, on_progress)
        finally:
            for handle in slots:
                with contextlib.suppress(Exception):
                    ray.kill(handle)
            with contextlib.suppress(Exception):
                queue.shutdown()


def _dispatch(
    ray: Any,
    slots: list[Any],
    start: Callable[[int], Any],
    waves: list[list[ChunkJob]],
    queue: Any,
    on_result: Callable[[ChunkResult], None],
    on_progress: Callable[[Progress, int], None] | None,
) -> list[str]:
    """Hand the waves to the workers in ``slots`` as they free up, one wave each;
    ``start(slot)`` replaces a worker that died. Returns notes on retries."""
    from ray.util.queue import Empty

    pids: dict[int, int] = {}
    unused: dict[int, str] = {}  # workers given a GPU that torch cannot use -> its GPUs
    pending = deque((wave, 1) for wave in waves)
    running: dict[Any, tuple[int, list[ChunkJob], int]] = {}
    notes: list[str] = []

    def drain() -> None:
        with contextlib.suppress(Empty):
            while True:
                p = queue.get_nowait()
                if on_progress is not None:
                    on_progress(p, pids.get(p.worker, 0))

    while pending or running:
        busy = {slot for slot, _, _ in running.values()}
        for slot in range(len(slots)):
            if slot not in busy and pending:
                wave, attempt = pending.popleft()
                if slot not in pids:
                    about = ray.get(slots[slot].about.remote())
                    pids[slot] = int(about["pid"])
                    if about["gpus"] and not about["device"].startswith("cuda"):
                        unused[slot] = about["gpus"]
                running[slots[slot].render.remote(wave)] = (slot, wave, attempt)
        ready, _ = ray.wait(list(running), num_returns=1, timeout=0.25)
        drain()
        for ref in ready:
            slot, wave, attempt = running.pop(ref)
            try:
                results = ray.get(ref)
            except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as e:
                chunks = ", ".join(str(job.chunk.index) for job in wave)
                if attempt >= ATTEMPTS:
                    raise UserError(
                        f"chunk {chunks} failed {attempt} times: its worker died "
                        f"({type(e).__name__}); finished chunks are kept for --resume"
                    ) from None
                notes.append(
                    f"worker {slot + 1} died during chunk {chunks}; "
                    "the chunk was rendered again by a fresh worker"
                )
                slots[slot] = start(slot)
                pids.pop(slot, None)
                pending.appendleft((wave, attempt + 1))
                continue
            except ray.exceptions.RayTaskError as e:
                if isinstance(e.cause, UserError):
                    raise UserError(str(e.cause)) from None
                raise e.cause from None
            for result in results:
                on_result(result)
    drain()
    if unused:
        who = ", ".join(str(k + 1) for k in sorted(unused))
        notes.append(
            f"worker(s) {who} were given GPU(s) {', '.join(unused[k] for k in sorted(unused))} "
            "but torch finds no CUDA there: they dreamed on the CPU (dreamvideo doctor on "
            "that machine says why)"
        )
    return notes
