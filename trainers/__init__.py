"""The toolkit's plugins: methods (Dassl trainers) and the roles they wire: targets, prompters, encoders, optimisers."""

__version__ = "0.3.0"
