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
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dreamvideo.config import Config
from dreamvideo.errors import UserError
from dreamvideo.scale.worker import ChunkJob, ChunkResult, render_chunk

ATTEMPTS = 3  # tries per chunk before the render gives up
PROGRESS_EVERY = 0.5  # seconds between a worker's progress messages


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


@dataclass(frozen=True)
class Progress:
    """One worker's latest report."""

    worker: int
    chunk: int
    done: int  # frames of the chunk finished
    total: int
    fps: float  # frames per second of this chunk so far
    node: str  # the machine (Ray node id, shortened)


class _Worker:
    """The actor: the clip and the network are loaded once, chunks rendered one at a time."""

    def __init__(self, cfg: Config, source: bytes, suffix: str, slot: int, queue: Any) -> None:
        import ray

        from dreamvideo.render.network import dreamer_for

        self.slot, self.queue = slot, queue
        self.node = ray.get_runtime_context().get_node_id()[:8]
        digest = hashlib.sha256(source).hexdigest()[:16]
        self.source = Path(tempfile.gettempdir()) / f"dreamvideo-source-{digest}{suffix}"
        if not self.source.exists():
            tmp = self.source.with_name(f"{self.source.name}.{os.getpid()}")
            tmp.write_bytes(source)
            tmp.replace(self.source)
        self.dreamer = dreamer_for(cfg.dream)

    def pid(self) -> int:
        return os.getpid()

    def render(self, job: ChunkJob) -> ChunkResult:
        t0, last = time.perf_counter(), 0.0

        def report(done: int) -> None:
            nonlocal last
            now = time.perf_counter()
            if now - last >= PROGRESS_EVERY or done == job.chunk.rendered:
                last = now
                fps = done / max(now - t0, 1e-9)
                self.queue.put_nowait(
                    Progress(self.slot, job.chunk.index, done, job.chunk.rendered, fps, self.node)
                )

        result = render_chunk(job, self.source, self.dreamer, report)
        where = {"node": self.node, "pid": str(os.getpid())}
        return replace(result, worker=where)


def worker_resources(ray: Any, workers: int, gpus: float | None) -> tuple[float, float]:
    """``(cpus, gpus)`` each worker asks for: an equal share of the cluster's cores (at
    least one), and one GPU where the cluster has GPUs unless ``gpus`` says otherwise."""
    total = ray.cluster_resources()
    cpus = max(1, int(total.get("CPU", 1)) // workers)
    if gpus is None:
        gpus = 1.0 if total.get("GPU", 0) >= 1 else 0.0
    return float(cpus), float(gpus)


def run_chunks(
    ray: Any,
    cfg: Config,
    source: Path,
    jobs: list[ChunkJob],
    workers: int,
    gpus: float | None,
    on_result: Callable[[ChunkResult], None],
    on_progress: Callable[[Progress, int], None] | None = None,
) -> list[str]:
    """Render every job on ``workers`` actors, ``on_result`` as each chunk lands (in any
    order). ``on_progress(progress, pid)`` hears each worker's reports. A chunk whose worker
    dies is given to a fresh worker, up to ``ATTEMPTS`` times. Returns notes on retries."""
    from ray.util.queue import Empty, Queue

    cpus, per_gpu = worker_resources(ray, workers, gpus)
    threads = int(cpus) if per_gpu == 0 else cfg.dream.threads
    worker_cfg = cfg.override("dream", threads=threads)
    actor = ray.remote(num_cpus=cpus, num_gpus=per_gpu, max_restarts=0)(_Worker)
    clip = ray.put(source.read_bytes())
    queue = Queue()
    slots = [actor.remote(worker_cfg, clip, source.suffix, k, queue) for k in range(workers)]
    pids: dict[int, int] = {}
    pending = deque((job, 1) for job in jobs)
    running: dict[Any, tuple[int, ChunkJob, int]] = {}
    notes: list[str] = []

    def drain() -> None:
        with contextlib.suppress(Empty):
            while True:
                p = queue.get_nowait()
                if on_progress is not None:
                    on_progress(p, pids.get(p.worker, 0))

    try:
        while pending or running:
            busy = {slot for slot, _, _ in running.values()}
            for slot in range(workers):
                if slot not in busy and pending:
                    job, attempt = pending.popleft()
                    if slot not in pids:
                        pids[slot] = ray.get(slots[slot].pid.remote())
                    running[slots[slot].render.remote(job)] = (slot, job, attempt)
            ready, _ = ray.wait(list(running), num_returns=1, timeout=0.25)
            drain()
            for ref in ready:
                slot, job, attempt = running.pop(ref)
                try:
                    result = ray.get(ref)
                except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as e:
                    if attempt >= ATTEMPTS:
                        raise UserError(
                            f"chunk {job.chunk.index} failed {attempt} times: its worker died "
                            f"({type(e).__name__}); finished chunks are kept for --resume"
                        ) from None
                    notes.append(
                        f"worker {slot + 1} died during chunk {job.chunk.index}; "
                        "the chunk was rendered again by a fresh worker"
                    )
                    slots[slot] = actor.remote(worker_cfg, clip, source.suffix, slot, queue)
                    pids.pop(slot, None)
                    pending.appendleft((job, attempt + 1))
                    continue
                except ray.exceptions.RayTaskError as e:
                    if isinstance(e.cause, UserError):
                        raise UserError(str(e.cause)) from None
                    raise e.cause from None
                on_result(result)
        drain()
    finally:
        for handle in slots:
            with contextlib.suppress(Exception):
                ray.kill(handle)
        with contextlib.suppress(Exception):
            queue.shutdown()
    return notes
