"""dreamvideo inside ComfyUI: the nodes (:mod:`dreamvideo.comfy.nodes`) and the step that puts
the pack into ComfyUI's ``custom_nodes`` folder (:mod:`dreamvideo.comfy.install`)."""
