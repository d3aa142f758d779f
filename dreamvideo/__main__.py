from dreamvideo.cli.entry import run

run()
