"""dreamvideo inside ComfyUI: the nodes (:mod:`dreamvideo.comfy.nodes`) and the step that puts
the pack into ComfyUI's ``custom_nodes`` folder (:mod:`dreamvideo.comfy.install`)."""

from dreamvideo.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "install": ("install_pack", "workflows"),
        "nodes": ("NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"),
    },
)
