"""What goes in and what comes out: inputs made with the bundled ffmpeg from real clips, each
rendered without dreaming (an identity render) into an output kind, the output decoded.

    pip install -e ".[bench]"
    python benchmarks/bench_formats.py [--seconds 2] [--width 320] [--loop-seconds 2]

For each input kind (a folder of 16-bit PNG, an EXR pattern, HLG and PQ HEVC 10-bit, a phone's
variable-frame-rate clip with sound, interlaced H.264 and MPEG-2, anamorphic pixels, an MKV
with two sound tracks and subtitles, ProRes 4444 and VP9 with alpha, an animated GIF) the
table gives frames, rate and duration in and out, the sound streams, the alpha, and the mean
CIE76 colour difference of the output from ffmpeg's own correct conversion of the input (the
filters a player applies: deinterlacing, HDR to SDR, square pixels, a constant rate), as is
and after a 5x5 blur (without the dither and grain the eye does not see). Then a
looped zoom GIF: its closing step (last frame to first) against the steps between frames,
and its size beside the same loop as WebP and H.264.
Made from bikes.mp4 (street footage) and bigbuckbunny.mp4 (animation, with sound).
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np
from common import real_clip, table

from dreamvideo.config import Config
from dreamvideo.media import (
    describe,
    ffmpeg_exe,
    ffmpeg_filters,
    packet_times,
    probe_video,
    raw_frames,
    read_frames,
)
from dreamvideo.render import dreamer_for, render_video, render_zoom

# The sources are untagged BT.709 SDR: zscale needs to be told what it converts from.
TAGS = "zscale=tin=bt709:pin=bt709:min=bt709:rin=tv"
ROOT = Path(__file__).resolve().parent.parent
IDENTITY = {
    "dream": {"layers": "blocks.1", "octaves": 1, "iterations": 0},
    "video": {"next_iterations": 0},
    "encode": {"preset": "fast"},
}


def ffmpeg(*args: object) -> None:
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *map(str, args)], check=True, timeout=600)


def make_inputs(folder: Path, seconds: float, width: int) -> dict[str, Path]:
    bikes, bunny = real_clip("bikes.mp4"), real_clip("bigbuckbunny.mp4")
    cut = ["-t", f"{seconds}"]
    size = f"scale={width}:-2"
    made: dict[str, Path] = {}

    def out(name: str) -> Path:
        made[name] = folder / name
        return made[name]

    png = folder / "png16"
    png.mkdir()
    ffmpeg("-i", bikes, *cut, "-vf", size, "-pix_fmt", "rgb48be", png / "frame_%04d.png")
    made["16-bit PNG folder"] = png
    exr = folder / "exr"
    exr.mkdir()
    ffmpeg("-i", bikes, *cut, "-vf", f"{size},{TAGS}:t=linear:p=bt709:npl=100,format=gbrpf32le",
           "-c:v", "exr", exr / "shot_%04d.exr")  # fmt: skip
    made["EXR pattern (linear, float)"] = exr / "shot_%04d.exr"
    for name, curve in (("HLG HEVC 10-bit", "arib-std-b67"), ("PQ HEVC 10-bit", "smpte2084")):
        ffmpeg("-i", bunny, *cut, "-vf", f"{size},{TAGS}:t={curve}:p=bt2020:m=bt2020nc:r=tv:"
               "npl=100,format=yuv420p10le", "-c:v", "libx265", "-x265-params",
               "log-level=error:crf=12", "-c:a", "copy", out(f"{name}.mp4"))  # fmt: skip
        made[name] = made.pop(f"{name}.mp4")
    ffmpeg("-i", bunny, *cut, "-vf", f"{size},select='not(between(n,20,39)*mod(n,3))'",
           "-fps_mode", "passthrough", "-c:v", "libx264", "-crf", "12", "-c:a", "aac",
           out("vfr.mp4"))  # fmt: skip
    made["phone VFR with sound"] = made.pop("vfr.mp4")
    interlace = "tinterlace=mode=interleave_top,setfield=tff"
    ffmpeg("-i", bunny, *cut, "-vf", f"{size},fps=50,{interlace}", "-c:v", "libx264",
           "-flags", "+ildct+ilme", "-x264opts", "tff=1", "-crf", "12", out("tff.mp4"))  # fmt: skip
    made["interlaced H.264 (tff)"] = made.pop("tff.mp4")
    ffmpeg("-i", bunny, *cut, "-vf", f"{size},fps=50,{interlace}", "-c:v", "mpeg2video",
           "-flags", "+ildct+ilme", "-field_order", "tt", "-q:v", "2", out("dvd.mpg"))  # fmt: skip
    made["interlaced MPEG-2 (DVD)"] = made.pop("dvd.mpg")
    squeezed = f"scale={width * 11 // 16 // 2 * 2}:{width * 9 // 16 // 2 * 2},setsar=16/11"
    ffmpeg("-i", bikes, *cut, "-vf", squeezed, "-c:v", "libx264", "-crf", "12", out("sar.mp4"))
    made["anamorphic (SAR 16:11)"] = made.pop("sar.mp4")
    srt = folder / "words.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n\n2\n00:00:01,000 --> 00:00:02,000"
                   "\nworld\n")  # fmt: skip
    ffmpeg("-i", bunny, "-f", "lavfi", "-i", f"sine=f=660:d={seconds}", "-i", srt, *cut,
           "-vf", size, "-map", "0:v", "-map", "0:a", "-map", "1:a", "-map", "2", "-c:v",
           "libx264", "-crf", "12", "-c:a", "aac", "-c:s", "srt", out("tracks.mkv"))  # fmt: skip
    made["MKV, 2 sound tracks, subtitles"] = made.pop("tracks.mkv")
    alpha = "geq=lum='lum(X,Y)':cb='cb(X,Y)':cr='cr(X,Y)'"
    ffmpeg("-i", bikes, *cut, "-vf", f"{size},format=yuva444p10le,{alpha}:a='X*1023/W'",
           "-c:v", "prores_ks", "-profile:v", "4", out("alpha.mov"))  # fmt: skip
    made["ProRes 4444 with alpha"] = made.pop("alpha.mov")
    ffmpeg("-i", bikes, *cut, "-vf", f"{size},format=yuva420p,{alpha}:a='X*255/W'", "-c:v",
           "libvpx-vp9", "-crf", "12", "-b:v", "0", out("alpha.webm"))  # fmt: skip
    made["VP9 with alpha"] = made.pop("alpha.webm")
    ffmpeg("-i", bikes, *cut, "-vf", f"{size},fps=12", out("anim.gif"))
    made["animated GIF"] = made.pop("anim.gif")
    return made


OUTPUTS = {  # input kind -> (output name, encode settings)
    "16-bit PNG folder": ("png16/dream_%04d.png", {}),
    "EXR pattern (linear, float)": ("exr/dream_%04d.exr", {}),
    "HLG HEVC 10-bit": ("hlg-kept.mp4", {"codec": "h265", "hdr": "keep"}),
    "PQ HEVC 10-bit": ("pq-sdr.mp4", {}),
    "phone VFR with sound": ("vfr.mp4", {}),
    "interlaced H.264 (tff)": ("tff.mp4", {}),
    "interlaced MPEG-2 (DVD)": ("dvd.mp4", {}),
    "anamorphic (SAR 16:11)": ("sar.mp4", {}),
    "MKV, 2 sound tracks, subtitles": ("tracks.mkv", {}),
    "ProRes 4444 with alpha": ("alpha.mov", {"codec": "prores4444"}),
    "VP9 with alpha": ("alpha.webm", {}),
    "animated GIF": ("anim.webp", {}),
}


def lab(rgb: np.ndarray, blur: bool) -> np.ndarray:
    """CIELAB of an 8-bit RGB frame; ``blur``: after a 5x5 Gaussian blur, which leaves out
    what the eye does not see at a normal distance (a GIF's dither pattern, codec grain)."""
    rgb = np.ascontiguousarray(rgb[..., :3])
    if blur:
        rgb = cv2.GaussianBlur(rgb, (5, 5), 0)
    x = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    return x * np.float32([100 / 255, 1, 1])


def delta_e(ref: list[np.ndarray], mine: list[np.ndarray], blur: bool) -> float:
    """Mean CIE76 difference over the frames both have."""
    return float(np.mean([np.linalg.norm(lab(a, blur) - lab(b, blur), axis=-1).mean()
                          for a, b in zip(ref, mine, strict=False)]))  # fmt: skip


def correct(source: Path, hdr: str) -> list[np.ndarray]:
    """ffmpeg's own conversion of a clip: the filters a player applies, 8-bit RGB."""
    info = probe_video(source)
    if info.reader == "frames":
        return [f for _, f in read_frames(info)]
    chain = ",".join(ffmpeg_filters(info, (info.width, info.height), hdr))
    frames = raw_frames(["-i", str(source), "-map", "0:v:0", "-vf", chain, "-pix_fmt", "rgb24"],
                        info.width * info.height * 3, "reference")  # fmt: skip
    return [np.frombuffer(f, np.uint8).reshape(info.height, info.width, 3) for f in frames]


def counts(path: Path) -> tuple[int, int]:
    text = describe(path) if path.is_file() else ""
    return text.count(": Audio:"), text.count(": Subtitle:")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--loop-seconds", type=float, default=2.0)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "in").mkdir()
        inputs = make_inputs(folder / "in", args.seconds, args.width)
        dreamer = dreamer_for(Config.from_dict(IDENTITY).dream)
        for kind, source in inputs.items():
            name, encode = OUTPUTS[kind]
            out = folder / "out" / name
            out.parent.mkdir(parents=True, exist_ok=True)
            cfg = Config.from_dict({**IDENTITY, "encode": {**IDENTITY["encode"], **encode}})
            r = render_video(cfg, source, out, dreamer=dreamer, overwrite=True)
            src, got = probe_video(source), probe_video(out)
            hdr = encode.get("hdr", "sdr")
            ref = correct(source, hdr)
            mine = [f for _, f in read_frames(got, hdr=hdr)]
            same = "" if len(ref) == len(mine) else f" ({min(len(ref), len(mine))} frames)"
            # what the source holds: its packets (a variable rate has fewer than its length
            # at the nominal rate), or its files
            held = len(packet_times(source)) if source.is_file() else src.frame_count
            a_in, s_in = counts(source)
            a_out, s_out = counts(out)
            src_alpha = "yes" if src.alpha else "no"
            out_alpha = "yes" if got.alpha else "no"
            rows.append([
                kind, name.split("/")[-1], f"{held} -> {r.frames}",
                f"{float(src.fps):.3g} -> {float(got.fps):.3g}",
                f"{src.duration or 0:.2f} -> {r.frames / float(got.fps):.2f}",
                f"{a_in}+{s_in} -> {a_out}+{s_out}", f"{src_alpha} -> {out_alpha}",
                f"{delta_e(ref, mine, False):.2f}{same}", f"{delta_e(ref, mine, True):.2f}",
            ])  # fmt: skip
            print(" | ".join(rows[-1]), flush=True)
        # the same loop (seeded, so the same frames) as GIF, WebP and H.264, for their sizes
        zoom = Config.from_dict({"zoom": {"seconds": args.loop_seconds, "width": 256,
                                          "height": 256, "loop": True}})  # fmt: skip
        sizes = {}
        for suffix in (".gif", ".webp", ".mp4"):
            loop = folder / "out" / f"loop{suffix}"
            render_zoom(zoom, ROOT / "samples" / "coffee.jpg", loop, overwrite=True)
            sizes[suffix] = loop.stat().st_size / 1024
        frames = [f.astype(np.float32) for _, f in read_frames(folder / "out" / "loop.gif")]
        steps = [np.abs(b - a).mean() for a, b in zip(frames, frames[1:], strict=False)]
        closing = np.abs(frames[-1] - frames[0]).mean()
    print()
    print(table(["input", "output", "frames", "fps", "seconds", "sound+subtitle streams",
                 "alpha", "ΔE (CIE76)", "ΔE, 5x5 blur"], rows))  # fmt: skip
    print(
        f"\nLooped zoom (coffee.jpg, 256x256, {args.loop_seconds:g} s at 24 fps, `zoom` preset):"
        f" {len(frames)} frames; last -> first step {closing:.1f}, steps between frames "
        f"{min(steps):.1f} .. {max(steps):.1f} (median {np.median(steps):.1f}), 0..255 units; "
        + ", ".join(f"{k} {v:.0f} KiB" for k, v in sizes.items())
    )


if __name__ == "__main__":
    main()
