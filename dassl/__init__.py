"""Clean-room engine implementing the Dassl.pytorch plugin API on current PyTorch."""

__version__ = "0.6.3"  # the Dassl.pytorch API version this engine implements; the toolkit's own is trainers.__version__
