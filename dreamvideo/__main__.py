from dreamvideo.cli import main

main()
