"""``python -m generators.dexed``: see :mod:`generators.dexed.commands`."""

from core.commandline import run_cli
from generators.dexed.commands import main

run_cli(main)
