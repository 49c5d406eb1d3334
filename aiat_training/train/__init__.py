"""Training of the NanoDet-style detector: losses, label assignment, trainer, evaluation, export."""
