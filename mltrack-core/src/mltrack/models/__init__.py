"""Models: the flavour contract, logging, registering and loading models through MLflow's model
registry, and the Python environment a model needs (the built-in python flavour is
``mltrack.python_flavour``: models logged with it name that module)."""
