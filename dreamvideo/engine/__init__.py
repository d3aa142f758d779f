"""The DeepDream core, on tensors only: the ascent, objectives, networks and their weights,
the device, colour. It knows nothing of files of its own making, of clips, renders or the
command line; everything comes in as arguments."""

from dreamvideo.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "ascent": (
            "AscentParams",
            "dream",
            "gradient",
            "normalize_gradient",
            "octave_sizes",
            "resize",
            "steps_for",
            "tile_spans",
        ),
        "color": ("color_stats", "match_color"),
        "device": ("DeviceIO", "blur", "pick_device", "to_float", "to_tensor", "to_uint8"),
        "dreamer": ("Build", "Dreamer", "Network"),
        "lanes": ("LanesClosed", "Lockstep"),
        "masks": ("FrameMasks", "color_key", "composite", "feather", "finish", "luma_key"),
        "efficientnet": ("EfficientNetLite0", "bundled_weights_path"),
        "models": ("Backbone", "load_backbone", "load_raft"),
        "objectives": ("Objective", "parse_objective"),
        "weights": ("ModelError",),
    },
)
