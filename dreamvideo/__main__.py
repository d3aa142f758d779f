from dreamvideo.cli import run

run()
