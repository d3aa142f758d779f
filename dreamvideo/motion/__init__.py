"""What moves between frames, without I/O: optical flow and the carried dream, the clip and
zoom steppers, keyframe schedules, their expressions, and the audio envelopes they hear."""

from dreamvideo.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "clip": ("Carry", "ClipSteps", "Tracked", "step_clip"),
        "envelopes": ("SAMPLE_RATE", "Envelopes", "analyse"),
        "flow": (
            "FlowFn",
            "Track",
            "carry_residual",
            "follow",
            "make_flow",
            "occlusion_mask",
            "track",
            "warp",
        ),
        "schedule": ("Schedule", "parse_schedule"),
        "zoom": (
            "Motion",
            "ZoomPlan",
            "ZoomState",
            "color_start",
            "cover",
            "feedback_step",
            "noise_start",
            "step_zoom",
        ),
    },
)
