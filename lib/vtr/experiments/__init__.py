"""One package per notebook, each split into its stages: data, model, train, evaluate, figures."""
