"""Training entry points, run with ``accelerate launch train/<script>.py``."""
