import re
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import assert_one_line_error, cli
from PIL import Image

from dreamvideo.config import Config
from dreamvideo.media.images import read_image_metadata
from dreamvideo.presets import preset_names

FAST = ["--octaves", "1", "--iterations", "2"]
run = cli


def test_image_dreams_and_records_its_settings(cat_png, tmp_path):
    out = tmp_path / "dream.png"
    r = run("image", cat_png, "-o", out, *FAST, "--layers", "blocks.4", "--seed", 5)
    assert r.code == 0, r.output
    src, dst = np.asarray(Image.open(cat_png)), np.asarray(Image.open(out))
    assert dst.shape == src.shape
    assert np.abs(dst.astype(int) - src).mean() > 2
    meta = read_image_metadata(out)
    assert meta["config"]["dream"]["layers"] == "blocks.4"
    assert meta["config"]["dream"]["seed"] == 5
    assert "objective blocks.4" in r.output and "x)" in r.output


def test_image_width_resizes_first(cat_png, tmp_path):
    out = tmp_path / "small.jpg"
    r = run("image", cat_png, "-o", out, *FAST, "--width", 48)
    assert r.code == 0, r.output
    assert Image.open(out).size == (48, 32)


def test_gallery_writes_a_labelled_sheet(cat_png, tmp_path):
    out = tmp_path / "sheet.png"
    r = run(
        "gallery",
        cat_png,
        "-o",
        out,
        "--layers",
        "blocks.2 blocks.4",
        "--size",
        48,
        "--iterations",
        2,
        "--octaves",
        1,
        "--columns",
        2,
    )
    assert r.code == 0, r.output
    w, h = Image.open(out).size
    assert w > 2 * 48 and h > 32
    assert read_image_metadata(out)["layers"] == ["blocks.2", "blocks.4"]


def test_layers_and_presets_list_everything():
    r = run("layers", "efficientnet_lite0")
    assert r.code == 0 and "blocks.10" in r.output and "112" in r.output
    r = run("presets")
    assert r.code == 0
    for name in preset_names():
        assert name in r.output
    r = run("presets", "classic")
    assert "inception4c" in r.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["image", "missing.png", "-o", "x.png"], "input file missing.png does not exist"),
        (["image", "{txt}", "-o", "x.png"], "is not a readable image"),
        (["image", "{cat}", "-o", "x.png", "--preset", "nope"], "unknown preset 'nope'"),
        (["image", "{cat}", "-o", "x.png", "--layers", "blocks.99"], "unknown layer 'blocks.99'"),
        (["image", "{cat}", "-o", "x.png", "--device", "tpu"], "dream.device: must be auto"),
        (["image", "{cat}", "-o", "x.gif"], "unknown picture type '.gif'"),
        (
            ["image", "{cat}", "-o", "x.png", "--set", "dream.jitter=-1"],
            "dream.jitter: must be >= 0",
        ),
        (["layers", "alexnet"], "'alexnet' is not one of 'efficientnet_lite0'"),
        (["image", "{cat}", "-o", "x.png", "--model", "alexnet"], "is not one of"),
        (["image", "{cat}", "-o", "x.png", "--octaves", "many"], "Invalid value for '--octaves'"),
        (
            ["image", "{cat}", "-o", "x.png", "--width", "100000"],
            "width 100000: must be 16 .. 16384",
        ),
        (["image", "{cat}", "-o", "{cat}", "-y"], "is the input file"),
        (["imag", "{cat}"], "No such command 'imag'"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(tmp_path, cat_png, args, message):
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    args = [a.format(txt=txt, cat=cat_png) for a in args]
    assert_one_line_error(run(*args), message)
    assert not (tmp_path / "x.png").exists()


def test_real_process_exit_code_and_no_traceback(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "dreamvideo",
            "image",
            str(tmp_path / "no.png"),
            "-o",
            str(tmp_path / "o.png"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.strip() == f"error: input file {tmp_path / 'no.png'} does not exist"


def test_metadata_reproduces_the_render(cat_png, tmp_path):
    """The settings stored in a picture rebuild the same config, and rendering with them
    gives the same picture again."""
    from dreamvideo.api import dream_image

    out = tmp_path / "d.png"
    assert run("image", cat_png, "-o", out, *FAST, "--seed", 3, "--step", 2.5).code == 0
    meta = read_image_metadata(out)
    assert meta["dreamvideo"] and meta["source"] == cat_png
    cfg = Config.from_dict(meta["config"])
    assert (cfg.dream.seed, cfg.dream.step, cfg.dream.iterations) == (3, 2.5, 2)
    again = dream_image(cat_png, cfg)
    assert np.array_equal(again, np.asarray(Image.open(out)))


def test_a_render_piped_to_a_file_logs_progress_from_the_first_second(tmp_path):
    """Not a terminal: plain lines, the first at once, frames with rate and ETA after."""
    from conftest import pan_frames, write_clip

    clip = write_clip(tmp_path / "c.mp4", pan_frames(6, (48, 32)))
    log = tmp_path / "log"
    with open(log, "w") as f:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dreamvideo",
                "video",
                clip,
                "-o",
                str(tmp_path / "o.mp4"),
                *FAST,
                "--set",
                "dream.layers=blocks.3",
            ],
            stdout=f,
            stderr=subprocess.STDOUT,
        )
        while not log.read_text() and proc.poll() is None:
            time.sleep(0.02)
        running = proc.poll() is None  # the first line came while it worked, not at its end
        proc.wait(timeout=120)
    lines = log.read_text().splitlines()
    assert proc.returncode == 0, lines
    assert running and lines[0] == f"[0:00] reading {clip}"
    assert any("dreaming: the first frame gets the full dream" in line for line in lines)
    assert any(re.search(r"frame 6 of 6, [\d.]+ frames/s, eta 0:00", line) for line in lines), lines
    assert lines[-1].startswith("wrote ")


def test_threads_flag_sets_torchs_threads(cat_png, tmp_path):
    import torch

    before = torch.get_num_threads()
    try:
        assert run("image", cat_png, "-o", tmp_path / "t.png", *FAST, "--threads", 1).code == 0
        assert torch.get_num_threads() == 1
        assert read_image_metadata(tmp_path / "t.png")["config"]["dream"]["threads"] == 1
    finally:
        torch.set_num_threads(before)


def test_version_comes_from_the_package_and_goes_into_every_output(cat_png, tmp_path):
    from importlib.metadata import version

    for flag in ("--version", "-V"):
        r = run(flag)
        assert r.code == 0 and r.out.strip() == f"dreamvideo {version('dreamvideo')}"
    assert run("image", cat_png, "-o", tmp_path / "v.png", *FAST).code == 0
    assert read_image_metadata(tmp_path / "v.png")["dreamvideo"] == version("dreamvideo")


class OutOfMemoryError(RuntimeError):
    """What torch raises when the GPU's memory runs out (recognised by its name)."""


def test_running_out_of_memory_is_one_line_that_says_what_to_try(cat_png, tmp_path, monkeypatch):
    from conftest import pan_frames, write_clip

    from dreamvideo.cli.progress import Display

    gpu = "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has 1.2 GiB free. Of the..."
    monkeypatch.setattr(
        "dreamvideo.render.image.render_image",
        lambda *a, **k: (_ for _ in ()).throw(OutOfMemoryError(gpu)),
    )
    r = run("image", cat_png, "-o", tmp_path / "x.png", *FAST)
    assert_one_line_error(r, "out of memory on the GPU (it asked for 2.00 GiB more)")
    assert "--set dream.tile=512" in r.output and not (tmp_path / "x.png").exists()

    # mid-clip, after a checkpoint: the line also says what is kept and how to go on
    clip = write_clip(tmp_path / "in.mp4", pan_frames(8))
    frame = Display.frame

    def fail_at_six(self, report):
        if report.done == 6:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate")
        frame(self, report)

    monkeypatch.setattr(Display, "frame", fail_at_six)
    out = tmp_path / "out.mp4"
    args = ["video", clip, "-o", out, *FAST, "--set", "video.checkpoint_every=2"]
    r = run(*args)
    assert_one_line_error(r, "out of memory in RAM: dream in smaller tiles")
    assert f"kept in {out}.parts" in r.output and "--resume" in r.output
    monkeypatch.setattr(Display, "frame", frame)
    assert run(*args, "--resume").code == 0 and out.is_file()
