"""The one exception type for user mistakes: the CLI prints its message as one line, exit 2;
and the one line for a machine that ran out of memory."""

import re


class UserError(ValueError):
    """Bad input, flag, preset, file or device; the message names it and what is accepted."""


def out_of_memory(error: BaseException) -> str | None:
    """The one line for a render that ran out of memory, with what to try (``None``: the
    error is something else). Recognised by name and message, so torch is not imported:
    ``torch.OutOfMemoryError`` on a GPU, "can't allocate memory" from torch's CPU allocator,
    Python's own :class:`MemoryError`."""
    text = " ".join(str(error).split())
    if type(error).__name__ == "OutOfMemoryError":
        where = "on the GPU"
    elif isinstance(error, MemoryError) or "allocate memory" in text or "not enough memory" in text:
        where = "in RAM"
    else:
        return None
    asked = re.search(r"ried to allocate ([\d.]+ ?\w+)", text)
    detail = f" (it asked for {asked.group(1)} more)" if asked else ""
    return (
        f"out of memory {where}{detail}: dream in smaller tiles (--set dream.tile=512), "
        "clips at half size (--preset video-hd) or smaller (--width 1280), fewer lanes"
    )
