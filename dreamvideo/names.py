"""Every named choice, in one place and importing nothing: the config validates against these,
the CLI offers them, and each implementing module maps the same names to code (a test checks
that names and implementations agree)."""

# backbone networks (dreamvideo.engine.models builds each)
DEFAULT_MODEL = "efficientnet_lite0"
TORCHVISION_MODELS = ("googlenet", "vgg16", "vgg19", "resnet50", "inception_v3")
MODELS = (DEFAULT_MODEL, *TORCHVISION_MODELS)

# optical flow methods (dreamvideo.motion.flow.FLOW_METHODS) and DIS quality presets
FLOWS = ("dis", "farneback", "raft")
DIS_PRESETS = ("ultrafast", "fast", "medium")
# flows the metrics may measure with (RAFT needs weights; metrics stay offline)
METRIC_FLOWS = ("farneback", "dis")

# gradient normalizations (dreamvideo.engine.ascent.NORMALIZATIONS)
NORMALIZATIONS = ("mean", "laplacian")

# keyframe interpolations (dreamvideo.motion.schedule)
INTERPOLATIONS = ("linear", "smooth", "step")

# audio envelopes that schedules can use (dreamvideo.media.audio.envelopes makes each, 0..1)
ENVELOPES = ("rms", "onset", "beat", "bass", "mid", "treble")

# colour matching of dreamed frames (dreamvideo.engine.color.COLOR_MATCHES)
COLOR_MATCHES = ("none", "source", "first")

# forward precision on the device
PRECISIONS = ("auto", "fp32", "bf16", "fp16")

# what a zoom starts from when no picture is given
ZOOM_STARTS = ("noise", "color")

# x264 speed/size presets
X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
)

# output containers (dreamvideo.media.codecs.CONTAINERS says which codecs each takes) and
# the codecs a clip or zoom can be written with; "auto" is the container's own
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".gif", ".webp", ".apng")
CODECS = ("auto", "h264", "h265", "prores", "prores4444", "vp9", "av1", "ffv1", "gif", "webp",
          "apng")  # fmt: skip
# bits per channel written: "auto" (the source's where the output can store them), 8, 10 or
# 16, or "float" (EXR frames)
DEPTHS = ("auto", 8, 10, 16, "float")
# an HDR source (HLG or PQ) is dreamed in SDR BT.709 ("sdr") or kept HDR, 10 bits ("keep")
HDR_MODES = ("sdr", "keep")
# frame sequences in and out (a printf pattern such as frame_%04d.png, a folder, a glob)
FRAME_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".webp", ".exr")
# the sound written beside a frame folder, when asked
SOUND_FILES = ("none", "wav", "m4a")

# picture formats (suffix -> Pillow format)
IMAGE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
