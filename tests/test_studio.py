"""The web studio in real Chromium (Debian's package; Playwright downloads nothing).

Screenshots go to each test's folder, and also to ``$DREAMVIDEO_SCREENSHOTS`` when it names
a folder (the README's come from ``DREAMVIDEO_SCREENSHOTS=docs pytest tests/test_studio.py``).
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import cli, pan_frames, photo, write_clip
from PIL import Image

from dreamvideo.media.frames import probe_video, read_frames
from dreamvideo.media.images import read_image_metadata

pytest.importorskip("gradio")
sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package")
TIMEOUT = 120_000  # ms: a render on a busy 2-core machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    from dreamvideo.studio.server import serve

    root = tmp_path_factory.mktemp("studio")
    port = free_port()
    app = serve(root, "127.0.0.1", port, block=False)
    yield f"http://127.0.0.1:{port}", root
    app.close()


@pytest.fixture(scope="module")
def playwright():
    with sync_api.sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright):
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    yield b
    b.close()


@pytest.fixture()
def page(browser, studio):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    page.goto(studio[0])
    page.wait_for_selector("text=dreamvideo studio")
    yield page
    context.close()


def shot(page, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
    folder = os.environ.get("DREAMVIDEO_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_path / f"{name}.png", Path(folder) / f"{name}.png")


def status(page, name: str) -> str:
    return page.locator(f"#{name}-status textarea").input_value()


def wait_status(page, name: str, start: str) -> str:
    page.wait_for_function(
        f"() => (document.querySelector('#{name}-status textarea') || {{}}).value"
        f"?.startsWith({start!r})"
    )
    return status(page, name)


def fill(page, elem: str, value: object) -> None:
    page.locator(f"#{elem} input, #{elem} textarea").first.fill(str(value))


def test_the_page_loads_with_five_tabs(page, tmp_path):
    for tab in ("Picture", "Clip", "Zoom", "Live", "Presets"):  # waits while the page builds them
        sync_api.expect(page.get_by_role("tab", name=tab)).to_be_visible(timeout=TIMEOUT)
    shot(page, tmp_path, "studio-picture")


def test_a_tiny_picture_is_dreamed_downloads_and_its_command_makes_the_same_file(page, tmp_path):
    src = tmp_path / "cat.png"
    Image.fromarray(photo("chelsea", 96)).save(src)
    page.set_input_files("#picture-in input[type=file]", str(src))
    fill(page, "picture-octaves", 1)
    fill(page, "picture-iterations", 2)
    fill(page, "picture-layers", "blocks.3")
    page.locator("#picture-go").click()
    assert wait_status(page, "picture", "wrote").endswith(".png")
    page.wait_for_selector("#picture-out img")
    with page.expect_download() as info:
        page.locator("#picture-file a").first.click()
    got = tmp_path / "downloaded.png"
    info.value.save_as(got)
    dreamed = np.asarray(Image.open(got).convert("RGB"))
    assert dreamed.shape == (64, 96, 3)
    # what the page asked for is what was rendered (the PNG carries its settings)
    dream = read_image_metadata(got)["config"]["dream"]
    assert (dream["layers"], dream["octaves"], dream["iterations"]) == ("blocks.3", 1, 2)
    shot(page, tmp_path, "studio-picture-dreamed")
    # the command shown, run in a terminal, makes the same picture
    command = page.locator("#picture-cmd .cm-content").inner_text()
    args = shlex.split(command)
    assert args[:2] == ["dreamvideo", "image"] and "--preset" in args
    out = tmp_path / "again.png"
    args[args.index("-o") + 1] = str(out)
    assert cli(*args[1:]).code == 0
    assert np.array_equal(np.asarray(Image.open(out).convert("RGB")), dreamed)


def test_a_picture_mask_keeps_the_black_half_and_its_command_agrees(page, tmp_path):
    src, matte = tmp_path / "cat.png", tmp_path / "half.png"
    Image.fromarray(photo("chelsea", 96)).save(src)
    half = np.zeros((64, 96), np.uint8)
    half[:, 48:] = 255
    Image.fromarray(half).save(matte)
    page.set_input_files("#picture-in input[type=file]", str(src))
    page.set_input_files("#picture-mask input[type=file]", str(matte))
    fill(page, "picture-octaves", 1)
    fill(page, "picture-iterations", 2)
    fill(page, "picture-layers", "blocks.3")
    page.locator("#picture-go").click()
    assert wait_status(page, "picture", "wrote").endswith(".png")
    command = page.locator("#picture-cmd .cm-content").inner_text()
    args = shlex.split(command)
    out = tmp_path / "again.png"
    args[args.index("-o") + 1] = str(out)
    assert cli(*args[1:]).code == 0
    dreamed, source = np.asarray(Image.open(out).convert("RGB")), photo("chelsea", 96)
    assert np.array_equal(dreamed[:, :48], source[:, :48])
    assert np.abs(dreamed[:, 56:].astype(int) - source[:, 56:]).mean() > 1


def test_a_tiny_clip_renders_with_progress_and_plays(page, tmp_path, studio):
    clip = Path(write_clip(tmp_path / "pan.mp4", pan_frames(8, (96, 64)), audio=True))
    page.get_by_role("tab", name="Clip").click()
    page.set_input_files("#clip-in input[type=file]", str(clip))
    page.locator("#clip-go").click()
    seen = wait_status(page, "clip", "frame")  # progress while it renders
    assert " of " in seen
    assert wait_status(page, "clip", "wrote").endswith(".mp4")
    page.locator("#clip-out video").wait_for()
    # it plays: the browser decodes the file and its clock moves
    page.evaluate("document.querySelector('#clip-out video').muted = true")
    page.evaluate("document.querySelector('#clip-out video').play()")
    page.wait_for_function("document.querySelector('#clip-out video').currentTime > 0.05")
    assert "ratio" in page.locator("#clip-metrics textarea").input_value()
    shot(page, tmp_path, "studio-clip")
    made = sorted((studio[1] / "sessions").glob("*/clip-*.mp4"))
    assert made and len(list(read_frames(made[-1]))) == 8


def test_cancel_after_a_checkpoint_stops_within_a_frame_and_keeps_nothing(
    page, tmp_path, studio, monkeypatch
):
    from dreamvideo.studio.session import Session

    clicks = []  # the session and the frames it had finished when Cancel was pressed
    real = Session.cancel

    def cancel(self):
        clicks.append((self, self.dreamed))
        real(self)

    monkeypatch.setattr(Session, "cancel", cancel)  # the server runs in this process
    clip = Path(write_clip(tmp_path / "long.mp4", pan_frames(120, (160, 96))))
    page.get_by_role("tab", name="Clip").click()
    page.set_input_files("#clip-in input[type=file]", str(clip))
    page.locator("#clip-go").click()
    sessions = studio[1] / "sessions"
    for _ in range(TIMEOUT // 100):  # until a checkpoint is on disk (every 30 frames)
        if list(sessions.glob("*/clip-*.mp4.parts/seg_00000.mp4")):
            break
        time.sleep(0.1)
    else:
        pytest.fail("no checkpoint was written")
    page.locator("#clip-cancel").click()
    assert wait_status(page, "clip", "cancelled") == "cancelled; nothing was kept"
    session, at_click = clicks[0]
    assert at_click >= 30 and session.dreamed - at_click <= 1  # the frame being dreamed
    assert not list(sessions.glob("*/*.parts")) and not list(session.folder.glob("clip-*.mp4"))


def test_zoom_preview_and_presets_tab(page, tmp_path, studio):
    page.get_by_role("tab", name="Zoom").click()
    fill(page, "zoom-width", 64)
    fill(page, "zoom-height", 64)
    page.locator("#zoom-preview").click()
    written = wait_status(page, "zoom", "wrote").removeprefix("wrote ")
    (made,) = studio[1].glob(f"sessions/*/{written}")
    assert len(list(read_frames(made))) == 4 and probe_video(made).width == 64
    shot(page, tmp_path, "studio-zoom")
    page.get_by_role("tab", name="Presets").click()
    shot(page, tmp_path, "studio-presets")


def test_a_broken_preset_shows_its_one_line_error_in_the_page(page, tmp_path, monkeypatch):
    monkeypatch.setenv("DREAMVIDEO_PRESETS", str(tmp_path / "mine"))
    page.get_by_role("tab", name="Presets").click()
    editor = page.locator("#preset-yaml .cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text("dream:\n  octaves: [1, 2\n")  # no auto-close, no auto-indent
    fill(page, "preset-name", "broken")
    page.locator("#preset-save").click()
    text = wait_status(page, "preset", "error")
    assert text.startswith("error: preset broken: invalid YAML") and "\n" not in text
    assert not (tmp_path / "mine").exists()


def test_no_file_outside_the_studio_folder_can_be_read(studio):
    for path in ("/etc/passwd", str(Path(__file__).resolve())):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"{studio[0]}/gradio_api/file={path}", timeout=10)
        assert e.value.code == 403
    inside = studio[1] / "sessions" / "probe" / "made.png"  # a session's own file is served
    inside.parent.mkdir(parents=True, exist_ok=True)
    inside.write_bytes(b"a session file")
    with urllib.request.urlopen(f"{studio[0]}/gradio_api/file={inside}", timeout=10) as r:
        assert r.status == 200 and r.read() == b"a session file"


def test_gradio_missing_is_one_line_naming_the_extra(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "gradio", None)
    monkeypatch.delitem(sys.modules, "dreamvideo.studio.page", raising=False)
    result = cli("ui", "--port", str(free_port()), "--share-folder", tmp_path / "s")
    assert result.code == 2 and "pip install 'dreamvideo[ui]'" in result.err


def test_the_live_tab_dreams_the_camera_as_it_plays(playwright, studio, tmp_path):
    """Chromium's fake camera plays a clip the test makes (a Y4M file); once the page has the
    camera, its frames are dreamed one after the other: the dreamed picture on the page
    changes, and the status gives the live rate."""
    import subprocess

    from dreamvideo.media.ffmpeg import ffmpeg_exe

    clip = write_clip(tmp_path / "cam.mp4", pan_frames(48, (320, 240)))
    y4m = tmp_path / "cam.y4m"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", clip, "-pix_fmt", "yuv420p",
                    str(y4m)], check=True)  # fmt: skip
    camera = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
              f"--use-file-for-fake-video-capture={y4m}"]  # fmt: skip
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", *camera])
    try:
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, permissions=["camera"]
        )
        page = context.new_page()
        page.set_default_timeout(TIMEOUT)
        page.goto(studio[0])
        page.wait_for_selector("text=dreamvideo studio")
        page.get_by_role("tab", name="Live").click()
        page.get_by_text("Click to Access Webcam").click()
        page.locator("#live-in button", has_text="Record").click()  # start streaming
        assert wait_status(page, "live", "dreaming 256x192 live")
        seen = set()
        t0 = time.monotonic()
        while len(seen) < 3 and time.monotonic() - t0 < 90:
            img = page.locator("#live-out img")
            if img.count():
                seen.add(img.first.get_attribute("src"))
            time.sleep(0.3)
        assert len(seen) >= 3  # the dream changes as the camera plays
        assert "frames/s" in status(page, "live")
        shot(page, tmp_path, "studio-live")
    finally:
        browser.close()
