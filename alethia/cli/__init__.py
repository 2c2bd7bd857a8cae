"""The ``alethia`` command. Each module registers its commands on the one Typer app."""
