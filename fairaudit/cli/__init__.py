"""The ``fairaudit`` command line (Typer); one module per command."""
