"""Everything that touches files and processes: ffmpeg (the one owner), clips and pictures
in and out, sound, safe output paths, resumable checkpoints, and the metrics read from files."""

from dreamvideo.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "audio": ("click_track", "load_envelopes", "plot", "write_wav"),
        "checkpoint": ("SegmentedRender", "parts_dir"),
        "codecs": ("Encoding", "choose_encoding", "codec_args", "video_args"),
        "ffmpeg": (
            "EncodeError",
            "Sound",
            "VideoWriter",
            "add_soundtrack",
            "count_frames",
            "describe",
            "ffmpeg_exe",
            "packet_times",
            "raw_frames",
            "read_audio",
            "read_video_metadata",
            "run_ffmpeg",
        ),
        "frame_folder": ("FrameFolderRender",),
        "live": ("Broadcast", "Latest", "parse_serve"),
        "frames": ("VideoInfo", "ffmpeg_filters", "probe_video", "read_frames"),
        "probe": ("VideoStream", "parse_description"),
        "sequence": ("frame_files", "read_frame", "write_frame"),
        "images": ("read_image", "read_image_metadata", "resize_rgb", "write_image"),
        "metrics": ("ClipMetrics", "measure_clip", "warping_error"),
        "mattes": ("Mattes", "mattes_for"),
        "paths": ("check_output", "write_atomic"),
    },
)
