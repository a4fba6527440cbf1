"""Thin Typer modules, one per command. Only this package (and escli.output) may import typer and rich."""
