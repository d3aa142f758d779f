"""GPU checks for a lent CUDA machine, and their dry run on the CPU.

    bash benchmarks/gpu.sh          # on the GPU machine (wheels/ carried): under 8 minutes
    bash benchmarks/gpu.sh --cpu    # anywhere: every section at tiny sizes, in about a minute

Each section runs in a process of its own under its own time limit, prints its figures and
how long it took; all figures also go into ``$OUT/gpu.json`` (default: the temporary
folder), ready for benchmarks/RESULTS.md. With ``--cpu`` the CUDA-only pieces (synchronize,
CUDA graphs, the sync debug mode, nvidia-smi) are skipped with a printed note and the sizes
shrink; everything else runs the same code as on the GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "astronaut-pan.mp4"


class Run:
    """What a section runs on: the device, and whether it is the CPU's dry run."""

    def __init__(self, cpu: bool) -> None:
        import torch

        self.cpu = cpu
        self.cuda = not cpu and torch.cuda.is_available()
        if not cpu and not self.cuda:
            sys.exit("no CUDA device here: run with --cpu for the dry run")
        self.device = "cuda" if self.cuda else "cpu"
        self.figures: dict[str, Any] = {}

    def note(self, text: str) -> None:
        print(f"   note: {text}", flush=True)

    def sync(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()

    def say(self, key: str, value: Any, line: str) -> None:
        self.figures[key] = value
        print(f"   {line}", flush=True)


def environment(run: Run) -> None:
    """The machine: GPU, driver, torch, and what dreamvideo doctor finds."""
    import torch

    from dreamvideo.render import examine

    if run.cuda:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                              "--format=csv,noheader"], capture_output=True, text=True)  # fmt: skip
        run.say("nvidia_smi", smi.stdout.strip(), smi.stdout.strip())
    else:
        run.note("nvidia-smi skipped (no GPU)")
    run.say("torch", torch.__version__, f"torch {torch.__version__}, CUDA {torch.version.cuda}")
    report = examine(timing=False)
    for name, value in report.rows:
        if not name.startswith("weights "):
            print(f"   {name}: {value}", flush=True)
    run.figures["doctor"] = report.figures


def tests(run: Run) -> None:
    """The CUDA tests: the step loop, shapes, lanes, devices.

    The step loop under the sync debug mode "error", one shape per octave, lanes, devices; on
    the CPU a quick subset of the ones that run without CUDA, of the same files."""
    files = ["tests/test_realtime.py", "tests/test_lanes.py", "tests/test_device.py"]
    pick = "not command_line" if run.cuda else "reads_nothing or one_shape or device"
    if not run.cuda:
        run.note("the CUDA-only tests skip themselves; a quick subset of the rest runs")
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *files,
                        "-k", pick], cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    tail = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr[-300:]
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|error)", tail)}
    run.say("tests", counts, tail)
    if r.returncode not in (0, 5):
        print(r.stdout[-3000:], flush=True)
        raise SystemExit(1)


def doctor(run: Run) -> None:
    """dreamvideo doctor: the device, a timed step, the estimates."""
    from dreamvideo.render import examine

    report = examine(timing=True)
    f = report.figures
    run.figures.update({k: f[k] for k in ("device", "step_ms", "video_720p_seconds",
                                          "video-hd_720p_seconds") if k in f})  # fmt: skip
    for name, value in report.rows:
        if name.startswith(("device", "GPU", "ascent", "video")):
            print(f"   {name}: {value}", flush=True)
    if run.cuda and f["device"] != "cuda":
        raise SystemExit("doctor did not pick the GPU")


def ascent(run: Run) -> None:
    """One ascent step of the video preset: eager, tiled, CUDA graph."""
    import torch

    from dreamvideo.engine import gradient
    from dreamvideo.presets import load_preset
    from dreamvideo.render import dreamer_for

    d = dreamer_for(load_preset("video").override("dream", device=run.device).dream)
    sizes = ((720, 1280), (1080, 1920)) if run.cuda else ((90, 160), (180, 320))
    repeats = 20 if run.cuda else 3

    def ms(fn: Callable[[], Any]) -> float:
        for _ in range(2):
            fn()
        run.sync()
        t = time.perf_counter()
        for _ in range(repeats):
            fn()
        run.sync()
        return (time.perf_counter() - t) / repeats * 1000

    tile = 1024 if run.cuda else 128
    if not run.cuda:
        run.note("the CUDA graph is skipped (CUDA only)")
    for h, w in sizes:
        x = torch.rand(1, 3, h, w, device=d.device)
        gen = torch.Generator().manual_seed(0)
        eager = ms(lambda x=x: gradient(d.net, d.objective, x, autocast=d.autocast))
        tiled = ms(
            lambda x=x, gen=gen: gradient(
                d.net, d.objective, x, tile=tile, autocast=d.autocast, generator=gen
            )
        )
        graphed = _graphed(d, x, ms) if run.cuda else None
        run.say(f"step_{w}x{h}", {"eager_ms": eager, "tiled_ms": tiled, "graph_ms": graphed},
                f"{w}x{h}: eager {eager:.2f} ms, tiled ({tile}) {tiled:.2f} ms "
                f"({tiled / eager:.2f}x)"
                + (f", CUDA graph {graphed:.2f} ms" if graphed else ""))  # fmt: skip


def _graphed(d: Any, x: Any, ms: Callable[[Callable[[], Any]], float]) -> float | None:
    """One step captured as a CUDA graph (forward, objective, backward) and replayed."""
    import torch

    from dreamvideo.engine import gradient

    static = x.clone().requires_grad_(True)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            gradient(d.net, d.objective, static, autocast=d.autocast)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(graph):
            v = d.objective(d.net(static, d.objective.layers)).sum()
            torch.autograd.grad(v, static)
    except Exception as e:  # noqa: BLE001 - reported, the run goes on
        print(f"   CUDA graph failed: {type(e).__name__}: {e}", flush=True)
        return None
    return ms(graph.replay)


def first_frame(run: Run) -> None:
    """The first frame of a clip, twice in one process (start-up cost)."""
    from dreamvideo.presets import load_preset
    from dreamvideo.render import dreamer_for, render_video

    width = 1280 if run.cuda else 96
    cfg = load_preset("video-hd").override(
        "video", width=width, max_frames=1
    ).override("dream", device=run.device)  # fmt: skip
    d = dreamer_for(cfg.dream)
    with tempfile.TemporaryDirectory() as tmp:
        for k in (1, 2):
            t = time.perf_counter()
            render_video(cfg, SAMPLE, Path(tmp) / "first.mp4", dreamer=d, overwrite=True)
            s = time.perf_counter() - t
            run.say(f"first_frame_{k}_s", s, f"first frame at {width} px, run {k}: {s:.2f} s")


def throughput(run: Run) -> None:
    """Frames/s end to end, lanes 1, 4, 8, peak memory, GPU busy.

    From decoding to the finished file, for the video presets, with the peak GPU memory and
    how busy the GPU was."""
    import torch

    from dreamvideo.presets import load_preset
    from dreamvideo.render import dreamer_for, render_video
    from dreamvideo.scale import render_video_chunked

    if run.cuda:
        grid = [(p, w, lanes) for p in ("video-hd", "video-fast") for w in (1280, 1920, 3840)
                for lanes in (1, 4, 8)]  # fmt: skip
    else:
        grid = [("video-fast", 64, 1), ("video-fast", 64, 2)]
        run.note("GPU memory and nvidia-smi's busy share are skipped (CUDA only)")
    d = None
    with tempfile.TemporaryDirectory() as tmp:
        for preset, width, lanes in grid:
            frames = 48 if width == 3840 else (72 if run.cuda else 8)
            cfg = load_preset(preset).override(
                "video", width=width, max_frames=frames, lanes=lanes, chunk_overlap=2
            ).override("dream", device=run.device)  # fmt: skip
            d = dreamer_for(cfg.dream, d)
            if run.cuda:
                torch.cuda.reset_peak_memory_stats()
            render = render_video if lanes == 1 else render_video_chunked
            path = Path(tmp) / f"{preset}-{width}-{lanes}.mp4"
            t = time.perf_counter()
            r, busy = _busy(run, lambda cfg=cfg, path=path, render=render, d=d: render(
                cfg, SAMPLE, path, dreamer=d, overwrite=True))  # fmt: skip
            fps = r.frames / (time.perf_counter() - t)
            peak = torch.cuda.max_memory_allocated() / 2**30 if run.cuda else None
            gpu = f", peak {peak:.2f} GiB, GPU busy {busy:.0f}%" if run.cuda else ""
            run.say(
                f"{preset}_{width}_lanes{lanes}",
                {"fps": fps, "peak_gib": peak, "gpu_busy": busy, "size": list(r.size)},
                f"{preset} {r.size[0]}x{r.size[1]} lanes {lanes}: {fps:.1f} frames/s{gpu}",
            )


def _busy(run: Run, work: Callable[[], Any]) -> tuple[Any, float | None]:
    """``work()`` while nvidia-smi samples the GPU's utilization every 100 ms."""
    if not run.cuda or shutil.which("nvidia-smi") is None:
        return work(), None
    smi = subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu",
                            "--format=csv,noheader,nounits", "-lms", "100"],
                           stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        result = work()
    finally:
        smi.terminate()
    samples = [float(s) for s in smi.communicate()[0].split() if s.strip().isdigit()]
    return result, sum(samples) / max(len(samples), 1)


def live(run: Run) -> None:
    """Live: the bundled clip sent over loopback UDP in real time."""
    from dreamvideo.media import ffmpeg_exe
    from dreamvideo.presets import load_preset
    from dreamvideo.render import dreamer_for, run_live

    width, fps, frames = (1280, 30.0, 150) if run.cuda else (64, 15.0, 12)
    cfg = load_preset("video-fast").override("dream", device=run.device)
    d = dreamer_for(cfg.dream)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sender = subprocess.Popen(
        [ffmpeg_exe(), "-v", "error", "-re", "-stream_loop", "-1", "-i", str(SAMPLE), "-an",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-f", "mpegts",
         f"udp://127.0.0.1:{port}?pkt_size=1316"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        r = run_live(cfg, f"udp://127.0.0.1:{port}", frames=frames, fps=fps, width=width,
                     dreamer=d)  # fmt: skip
    finally:
        sender.kill()
        sender.wait()
    s = r.stats
    run.say("live", {"first_s": r.first, "fps": s.fps, "dreamed": s.dreamed,
                     "dropped": s.dropped, "latency_ms": s.latency * 1000},
            f"live {r.size[0]}x{r.size[1]} aiming at {fps:g}/s: first picture after "
            f"{r.first:.2f} s, {s.fps:.1f} dreamed frames/s, {s.dreamed} dreamed / "
            f"{s.dropped} dropped, latency {s.latency * 1000:.0f} ms")  # fmt: skip


# name -> (section, seconds it may take on the GPU, on the CPU)
SECTIONS: dict[str, tuple[Callable[[Run], None], float, float]] = {
    "environment": (environment, 30, 30),
    "tests": (tests, 80, 60),
    "doctor": (doctor, 30, 40),
    "ascent": (ascent, 60, 30),
    "first_frame": (first_frame, 40, 30),
    "throughput": (throughput, 180, 60),
    "live": (live, 50, 40),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu", action="store_true", help="the dry run on the CPU, tiny sizes")
    ap.add_argument("--section", choices=list(SECTIONS), help=argparse.SUPPRESS)
    ap.add_argument("--figures", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.section:  # one section, in a process of its own (see below)
        run = Run(args.cpu)
        SECTIONS[args.section][0](run)
        Path(args.figures).write_text(json.dumps(run.figures, default=str), encoding="utf-8")
        return
    out = Path(os.environ.get("OUT") or tempfile.gettempdir())
    print(f"measured {time.strftime('%Y-%m-%d', time.gmtime())}"
          + (" (dry run on the CPU: tiny sizes, no GPU figures)" if args.cpu else ""))  # fmt: skip
    results: dict[str, Any] = {"cpu_dry_run": args.cpu, "sections": {}}
    t_all = time.perf_counter()
    for name, (section, gpu_limit, cpu_limit) in SECTIONS.items():
        limit = cpu_limit if args.cpu else gpu_limit
        print(f"== {name}: {section.__doc__.splitlines()[0]}", flush=True)
        figures = Path(tempfile.mkstemp(prefix="gpu-", suffix=".json")[1])
        t = time.perf_counter()
        try:
            proc = subprocess.run(
                [sys.executable, __file__, "--section", name, "--figures", str(figures),
                 *(["--cpu"] if args.cpu else [])],
                cwd=ROOT, timeout=limit,
            )  # fmt: skip
            status = "ok" if proc.returncode == 0 else f"failed ({proc.returncode})"
        except subprocess.TimeoutExpired:
            status = f"timed out after {limit:g} s"
        seconds = time.perf_counter() - t
        try:
            found = json.loads(figures.read_text(encoding="utf-8") or "{}")
        except (OSError, json.JSONDecodeError):
            found = {}
        figures.unlink(missing_ok=True)
        results["sections"][name] = {"status": status, "seconds": seconds, "figures": found}
        print(f"   {name}: {status} in {seconds:.1f} s", flush=True)
    results["seconds"] = time.perf_counter() - t_all
    target = out / "gpu.json"
    target.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    print("\n| section | status | seconds |\n|---|---|---|")
    for name, r in results["sections"].items():
        print(f"| {name} | {r['status']} | {r['seconds']:.1f} |")
    print(f"| all | | {results['seconds']:.1f} |\n\nfigures in {target}")
    if any(r["status"] != "ok" for r in results["sections"].values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
