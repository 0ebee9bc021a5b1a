"""Training only (``scripts/train.py``): the corpus reader, the crops a step trains on, the losses and the
discriminators, validation, the run's state, and data packs for machines without the corpus. The codec
itself never imports this package."""
