"""The plugin manager: finds plugins (entry points and the built-in one), validates their
settings sections, and tells which package to install when one is missing."""
