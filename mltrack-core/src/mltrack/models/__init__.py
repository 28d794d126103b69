"""Models: the flavour contract and the built-in python flavour, logging, registering and loading
models through MLflow's model registry, and the Python environment a model needs."""
