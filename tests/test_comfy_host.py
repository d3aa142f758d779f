"""The node pack in a real ComfyUI: started as users start it (``main.py --cpu``), the pack on
its custom-nodes path, the example workflows posted to ``/prompt`` as they ship, their results
fetched through ``/view`` and checked; Cancel timed; a bad value read from the error.

ComfyUI is not on the package registry: point ``COMFYUI_DIR`` at a checkout of
Comfy-Org/ComfyUI and ``COMFYUI_PYTHON`` at a Python with its requirements and dreamvideo
installed (default: this one). Without ``COMFYUI_DIR`` these tests skip, saying so.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
from conftest import pan_frames, photo, write_clip
from PIL import Image

from dreamvideo.comfy import install_pack, workflows
from dreamvideo.comfy.nodes import PRESERVED
from dreamvideo.media.ffmpeg import ffmpeg_exe
from dreamvideo.media.frames import probe_video, read_frames

COMFYUI = os.environ.get("COMFYUI_DIR")
PYTHON = os.environ.get("COMFYUI_PYTHON", sys.executable)
pytestmark = pytest.mark.skipif(
    not COMFYUI,
    reason="no ComfyUI to run the nodes in: set COMFYUI_DIR to a checkout of "
    "Comfy-Org/ComfyUI (and COMFYUI_PYTHON to a Python with its requirements and dreamvideo)",
)
FAST = {"octaves": 1, "iterations": 2}  # the workflows as shipped, dreamed lightly


class Comfy:
    """A running ComfyUI and its folders."""

    def __init__(self, url: str, root: Path) -> None:
        self.url, self.root = url, root
        self.input, self.output = root / "input", root / "output"
        self.client = uuid.uuid4().hex

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=30) as r:
            return r.read()

    def post(self, path: str, body: dict) -> dict:
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read()
        return json.loads(text) if text else {}

    def upload(self, path: Path) -> str:
        """POST /upload/image, as the page uploads a file (pictures, clips, sounds)."""
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; "
                f"filename=\"{path.name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                ).encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()  # fmt: skip
        req = urllib.request.Request(
            self.url + "/upload/image", data=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )  # fmt: skip
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())["name"]

    def run(self, prompt: dict, timeout: float = 600) -> dict:
        """POST /prompt and poll /history until it is done; the history entry."""
        pid = self.post("/prompt", {"prompt": prompt, "client_id": self.client})["prompt_id"]
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            done = json.loads(self.get(f"/history/{pid}"))
            if pid in done:
                entry = done[pid]
                entry["seconds"] = time.monotonic() - t0
                return entry
            time.sleep(0.25)
        raise AssertionError(f"prompt {pid} did not finish in {timeout} s")

    def fetch(self, item: dict, to: Path) -> Path:
        query = urllib.parse.urlencode({k: item[k] for k in ("filename", "subfolder", "type")})
        to.write_bytes(self.get(f"/view?{query}"))
        return to


class WebSocket:
    """The page's websocket, read as the page reads it (text messages only; enough of RFC
    6455 for a client on loopback)."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=600)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert b" 101 " in head.split(b"\r\n")[0], head

    def _exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("the websocket closed")
            data += chunk
        return data

    def receive(self) -> dict | None:
        """The next message: a JSON event, or ``None`` for anything else (binary previews)."""
        first, second = self._exactly(2)
        size = second & 0x7F
        if size == 126:
            size = int.from_bytes(self._exactly(2), "big")
        elif size == 127:
            size = int.from_bytes(self._exactly(8), "big")
        payload = self._exactly(size)
        return json.loads(payload) if first & 0x0F == 1 else None

    def close(self) -> None:
        self.sock.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    root = tmp_path_factory.mktemp("comfyrun")
    (root / "main.py").write_text("# the pack is installed here; ComfyUI runs from COMFYUI_DIR\n")
    for name in ("custom_nodes", "input", "output"):
        (root / name).mkdir()
    install_pack(root)  # custom_nodes/dreamvideo, and the workflows in user/default/workflows
    paths = root / "extra.yaml"
    paths.write_text(f"dreamvideo:\n  custom_nodes: {root / 'custom_nodes'}\n")
    port = free_port()
    log = open(root / "comfy.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [PYTHON, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
         "--disable-auto-launch", "--extra-model-paths-config", str(paths),
         "--input-directory", str(root / "input"), "--output-directory", str(root / "output"),
         "--user-directory", str(root / "user")],
        cwd=COMFYUI, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    c = Comfy(f"http://127.0.0.1:{port}", root)
    try:
        for _ in range(360):
            try:
                if json.loads(c.get("/object_info/DreamvideoImage")):
                    break
            except (OSError, ValueError):
                pass
            if proc.poll() is not None:
                raise AssertionError(f"ComfyUI ended: {(root / 'comfy.log').read_text()[-2000:]}")
            time.sleep(0.5)
        else:
            raise AssertionError("the dreamvideo nodes did not register")
        yield c
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def shipped(name: str, uploads: dict[str, str], node_inputs: dict | None = None) -> dict:
    """An example workflow as it ships, with this run's file names, dreamed lightly."""
    prompt = json.loads(workflows()[f"{name}.api.json"])
    for node in prompt.values():
        for key, value in node["inputs"].items():
            if isinstance(value, str) and value in uploads:
                node["inputs"][key] = uploads[value]
        if node["class_type"].startswith("Dreamvideo"):
            node["inputs"].update(FAST, **(node_inputs or {}))
    return prompt


def outputs(entry: dict) -> list[dict]:
    assert entry["status"]["status_str"] == "success", entry["status"]
    return [item for out in entry["outputs"].values() for item in out.get("images", [])]


def test_comfyui_lists_the_four_nodes(comfy):
    info = json.loads(comfy.get("/object_info"))
    mine = {k: v for k, v in info.items() if v.get("category") == "dreamvideo"}
    assert set(mine) == {"DreamvideoPreset", "DreamvideoImage", "DreamvideoVideo",
                         "DreamvideoZoom"}  # fmt: skip
    assert mine["DreamvideoZoom"]["output"] == ["IMAGE", "AUDIO"]


def test_the_picture_workflow(comfy, tmp_path):
    Image.fromarray(photo("chelsea", 192)).save(tmp_path / "cat.png")
    name = comfy.upload(tmp_path / "cat.png")
    entry = comfy.run(shipped("picture", {"cat.png": name}))
    (item,) = outputs(entry)
    got = np.asarray(Image.open(comfy.fetch(item, tmp_path / "dream.png")).convert("RGB"))
    source = photo("chelsea", 192)
    assert got.shape == source.shape and np.abs(got.astype(int) - source).mean() > 2
    print(f"picture workflow: {entry['seconds']:.1f} s")


def test_the_clip_with_a_mask_workflow(comfy, tmp_path):
    clip = Path(write_clip(tmp_path / "clip.mp4", pan_frames(24, (128, 72)), audio=True))
    matte = np.zeros((72, 128), np.uint8)
    matte[:, 64:] = 255  # dreamed on the right
    Image.fromarray(matte).save(tmp_path / "mask.png")
    uploads = {"clip.mp4": comfy.upload(clip), "mask.png": comfy.upload(tmp_path / "mask.png")}
    entry = comfy.run(shipped("clip-with-mask", uploads, {"iterations": 8, "step": 4.0}))
    (item,) = outputs(entry)
    dream = comfy.fetch(item, tmp_path / "dream.mp4")
    info = probe_video(dream)
    got = np.stack([f for _, f in read_frames(dream)]).astype(int)
    source = np.stack([f for _, f in read_frames(clip)]).astype(int)
    assert len(got) == 24 and info.has_audio
    kept = np.abs(got[..., :56, :] - source[..., :56, :]).mean()  # two H.264 encodes apart
    dreamed = np.abs(got[..., 72:, :] - source[..., 72:, :]).mean()
    assert kept < 4 and dreamed > 2.5 * kept, (kept, dreamed)
    print(f"clip-with-mask workflow: {entry['seconds']:.1f} s")


def test_the_music_zoom_workflow(comfy, tmp_path):
    song = tmp_path / "song.wav"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                    "aevalsrc='sin(2*PI*220*t)*lt(mod(t,0.5),0.1)':s=22050:d=3", str(song)],
                   check=True)  # fmt: skip
    entry = comfy.run(shipped("music-zoom", {"song.wav": comfy.upload(song)},
                              {"seconds": 2.0, "width": 96, "height": 96}))  # fmt: skip
    (item,) = outputs(entry)
    dream = comfy.fetch(item, tmp_path / "zoom.mp4")
    info = probe_video(dream)
    assert len(list(read_frames(dream))) == 48 and info.has_audio
    print(f"music-zoom workflow: {entry['seconds']:.1f} s")


def test_cancel_stops_a_clip_within_a_frame(comfy, tmp_path):
    """Progress comes per frame over the page's websocket; Cancel (POST /interrupt) after a
    few touch-ups lets at most the frame being dreamed finish."""
    clip = Path(write_clip(tmp_path / "long.mp4", pan_frames(240, (160, 96)), audio=False))
    prompt = shipped(
        "clip-with-mask",
        {"clip.mp4": comfy.upload(clip)},
        {"octaves": PRESERVED, "iterations": PRESERVED},
    )  # the preset's own
    del prompt["3"], prompt["4"]["inputs"]["mask"]  # no mask: the whole frame
    prompt["5"]["inputs"].pop("audio")

    ws = WebSocket(f"{comfy.url}/ws?clientId={comfy.client}")
    comfy.post("/prompt", {"prompt": prompt, "client_id": comfy.client})
    ticks: list[float] = []
    asked = None
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        event = ws.receive()
        if event is None:
            continue
        if event["type"] == "progress" and event["data"]["node"] == "4":
            ticks.append(time.monotonic())
            if len(ticks) == 6:
                asked = time.monotonic()
                comfy.post("/interrupt", {})
        elif event["type"] == "execution_interrupted":
            break
    ws.close()
    assert asked is not None, "no progress came"
    took, frame = time.monotonic() - asked, (ticks[5] - ticks[2]) / 3  # a touch-up's time
    after = len(ticks) - 6  # frames finished after Cancel: the one being dreamed, at most
    assert after <= 1, (after, took, frame)
    print(
        f"cancel: {after} frame(s) after the request, stopped (its files cleaned up) "
        f"{took:.2f} s after it; a frame takes {frame:.2f} s"
    )


def test_a_bad_value_is_the_command_lines_one_line(comfy, tmp_path):
    Image.fromarray(photo("chelsea", 64)).save(tmp_path / "cat.png")
    prompt = shipped("picture", {"cat.png": comfy.upload(tmp_path / "cat.png")},
                     {"layers": "blocks.99"})  # fmt: skip
    entry = comfy.run(prompt)
    errors = [m[1] for m in entry["status"]["messages"] if m[0] == "execution_error"]
    assert errors and "unknown layer 'blocks.99'" in errors[0]["exception_message"]
    assert "\n" not in errors[0]["exception_message"].strip()
