"""More than one render at once: clips planned as chunks, rendered on Ray workers or in lanes
of one process and joined, and batches of jobs. Ray (the extra ``dreamvideo[ray]``) is
imported only when workers run."""

from dreamvideo.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "batch": ("run_here", "run_on_ray"),
        "chunked": ("render_clip", "render_video_chunked", "scout"),
        "chunks": ("Chunk", "crossfade", "plan_chunks"),
        "jobs": ("BatchJob", "read_jobs"),
        "lanes": ("LaneProgress", "render_lanes"),
    },
)
