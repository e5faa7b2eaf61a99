"""Models: encoders (open_clip), temporal heads, cross-modal scorers, HNeRV."""
