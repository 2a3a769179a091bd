"""Command-line interface: one thin subcommand per module."""
