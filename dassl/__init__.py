"""Clean-room engine implementing the Dassl.pytorch plugin API on current PyTorch."""

__version__ = "0.6.3"
