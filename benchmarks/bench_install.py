"""The README's first command from a fresh clone: how long it takes, and how big it is.

    python benchmarks/bench_install.py [--keep]

Clones this repository's committed state into a temporary folder and runs the README's first
command there as written (a new virtual environment, ``pip install -e .``, the render of the
bundled clip), step by step in one shell, timing each step; then the virtual environment's
size on disk. As a reference in the same run, the same render runs again in the new
environment (warm: its files now in the page cache, its imports compiled), and once in the
environment this script runs in. ``--keep`` leaves the clone for a look.

What the install costs depends on the package registry (and pip's cache) more than on the
machine: the figure is for this machine, which reaches PyPI and has PyTorch's wheels on disk.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import table

ROOT = Path(__file__).resolve().parent.parent
MARK = "__step_done__"


def first_command() -> str:
    """The first bash block under the README's "Two commands"."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Two commands", 1)[1]
    return re.search(r"```bash\n(.+?)\n```", section, re.S).group(1).strip()


def timed_steps(command: str, folder: Path) -> tuple[list[tuple[str, float]], str]:
    """Run ``command``'s ``&&`` steps in one bash in ``folder``; each step's seconds."""
    steps = [s.strip() for s in command.split("&&")]
    script = "set -e\n" + "".join(f"{s}\necho {MARK} $(date +%s.%N)\n" for s in steps)
    t0 = time.time()
    r = subprocess.run(
        ["bash", "-c", script], cwd=folder, capture_output=True, text=True, timeout=3600
    )
    if r.returncode != 0:
        sys.exit(f"the README's command failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    marks = [float(line.split()[1]) for line in r.stdout.splitlines() if line.startswith(MARK)]
    ends = [t0, *marks]
    return [(s, b - a) for s, a, b in zip(steps, ends[:-1], ends[1:], strict=True)], r.stderr


def size_of(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", action="store_true", help="keep the clone")
    args = ap.parse_args()
    command = first_command()
    render = command.split("&&")[-1].strip()
    tmp = Path(tempfile.mkdtemp(prefix="dreamvideo-install-"))
    try:
        clone = tmp / "dreamvideo"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        steps, _ = timed_steps(command, clone)
        venv = size_of(clone / ".venv")
        again, _ = timed_steps(f". .venv/bin/activate && {render} -y", clone)
        here_render = render.replace("dreamvideo ", f"{sys.executable} -m dreamvideo ", 1)
        here, _ = timed_steps(f"{here_render} -y", clone)
    finally:
        if args.keep:
            print(f"the clone is kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nThe README's first command, from a fresh clone:\n\n    {command}\n")
    rows = [[f"`{step}`", f"{seconds:.0f} s"] for step, seconds in steps]
    rows.append(["all of it", f"{sum(s for _, s in steps):.0f} s"])
    rows.append(["the render again, in the new environment (reference)", f"{again[-1][1]:.0f} s"])
    rows.append(["the render in this script's environment (reference)", f"{here[-1][1]:.0f} s"])
    rows.append(["size of the new `.venv`", f"{venv / 2**30:.2f} GiB"])
    print(table(["step", "time"], rows))


if __name__ == "__main__":
    main()
