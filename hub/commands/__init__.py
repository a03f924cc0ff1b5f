"""The `evi` sub-commands, one module per area; each exposes ``register(app)``."""
