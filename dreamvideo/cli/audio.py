"""``dreamvideo audio``: the envelopes a song gives the schedules, as a picture."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dreamvideo.cli.common import Output, Overwrite, Preset, Sets, app, build_config, display, out
from dreamvideo.config import MAX_FPS, MIN_FPS
from dreamvideo.errors import UserError
from dreamvideo.media.paths import check_input


@app.command()
def audio(
    song: Annotated[Path, typer.Argument(help="any file with sound", metavar="SONG")],
    output: Output = Path("envelopes.png"),
    fps: Annotated[float, typer.Option("--fps", help="frames per second of the animation")] = 24.0,
    preset: Preset = "zoom-music",
    sets: Sets = None,
    overwrite: Overwrite = False,
) -> None:
    """Plot a song's envelopes for schedules, with the beats marked.

    The envelopes are rms, onset, beat, bass, mid and treble, each 0..1 per frame.

    Example: dreamvideo audio song.mp3 -o envelopes.png
    """
    check_input(song, "song")
    if not MIN_FPS <= fps <= MAX_FPS:  # nan included
        raise UserError(f"--fps {fps:g}: must be {MIN_FPS:g} .. {MAX_FPS:g} frames per second")
    cfg = build_config(preset, sets).override("zoom", fps=fps)
    from dreamvideo.media.audio import plot
    from dreamvideo.media.images import check_image_output, write_image
    from dreamvideo.render.zoom import load_audio

    target = check_image_output(output, (("song", song),), overwrite)
    with display("listening") as shown:
        shown.stage(f"analysing {song}")
        env = load_audio(cfg.override("zoom", audio=str(song)))
    write_image(target, plot(env))
    tempo = 60 * (len(env.beats) - 1) / (env.beats[-1] - env.beats[0]) if len(env.beats) > 1 else 0
    out.print(
        f"wrote {target}: {env.seconds:.1f} s, {env.frames} frames at {env.fps:g} fps, "
        f"{len(env.beats)} beats (about {tempo:.0f} bpm)",
        markup=False,
        highlight=False,
    )
