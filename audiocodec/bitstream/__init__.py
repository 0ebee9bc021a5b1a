"""Bytes only: code packing, entropy coding and the .acdc container. Never imports torch."""
