"""Data shipped with the market service: the replay sample tick file."""
