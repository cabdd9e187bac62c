"""``python -m generators.dexed``: see :mod:`generators.dexed.commands`."""

from generators.cli import run_cli
from generators.dexed.commands import main

run_cli(main)
