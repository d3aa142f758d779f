"""More than one process: clips planned as chunks, rendered on Ray workers and joined, and
batches of jobs. Ray (the extra ``dreamvideo[ray]``) is imported only when workers run."""

from dreamvideo.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "batch": ("run_here", "run_on_ray"),
        "chunked": ("render_video_chunked", "scout"),
        "chunks": ("Chunk", "crossfade", "plan_chunks"),
        "jobs": ("BatchJob", "read_jobs"),
    },
)
