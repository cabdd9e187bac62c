"""``python -m generators.vst``: see :mod:`generators.vst.cli`."""

from core.commandline import run_cli
from generators.vst.cli import main

run_cli(main)
