"""Configuration: the settings and where they come from (arguments, environment, ``.env``, TOML files),
their reference tables, and masking secrets in what is shown."""
