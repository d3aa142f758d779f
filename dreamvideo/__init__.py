"""dreamvideo: temporally stable DeepDream videos and infinite zoom-dream animations."""

__version__ = "0.1.0"
