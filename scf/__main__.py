"""``python -m scf``: the same commands as the ``scf`` console script."""

from scf.cli import app

app()
