"""One package per notebook, each split into its stages."""
