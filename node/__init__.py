"""Config, CLI and daemon wiring: the only layer that imports all the others."""
