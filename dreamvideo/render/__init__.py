"""The renders: a picture, a clip, a zoom, through one shared loop that encodes resumably
behind the dreaming; and the network each render dreams with."""

from dreamvideo.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "clip": ("ClipPlan", "clip_steps", "plan_clip", "render_video"),
        "doctor": ("examine",),
        "image": ("ImageResult", "picture", "render_gallery", "render_image"),
        "live": ("LiveStepper", "run_live"),
        "loop": ("FrameReport", "RenderResult"),
        "network": ("ascent_params", "dreamer_for", "network_of"),
        "zoom": ("plan_zoom", "render_zoom"),
    },
)
