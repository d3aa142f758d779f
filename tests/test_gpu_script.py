"""benchmarks/gpu.sh proven on the CPU: every section of the GPU run, at tiny sizes, with the
CUDA-only pieces skipped and said so, its figures in $OUT/gpu.json."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_gpu_script_runs_every_section_on_the_cpu(tmp_path):
    r = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu.sh"), "--cpu"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "OUT": str(tmp_path)},
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    found = json.loads((tmp_path / "gpu.json").read_text())
    sections = found["sections"]
    assert found["cpu_dry_run"] and list(sections) == [
        "environment", "tests", "doctor", "ascent", "first_frame", "throughput", "live"
    ]  # fmt: skip
    assert all(s["status"] == "ok" and s["seconds"] > 0 for s in sections.values())
    assert sections["tests"]["figures"]["tests"]["passed"] > 0
    assert sections["doctor"]["figures"]["device"] == "cpu"
    assert sections["live"]["figures"]["live"]["dreamed"] == 12
    for skipped in ("nvidia-smi skipped", "the CUDA graph is skipped", "(CUDA only)"):
        assert skipped in r.stdout
    assert "| all |" in r.stdout  # each section's time in the table
