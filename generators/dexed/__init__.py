"""The Yamaha DX7, through Dexed's engine (dexed-py), as a dataset generator.

* :mod:`generators.dexed.engine`: the 145 parameters of a DX7 voice, DX7 sysex
  files (single voices, 32-voice banks), rendering;
* :mod:`generators.dexed.config`: the JSON configs (``plugin_config/dexed_*.json``)
  that say which parameters vary, over which levels;
* :mod:`generators.dexed.synth`: :class:`DexedGenerator` (registered as
  ``"dexed"``), ``.syx`` patches in and out, datasets of real banks;
* ``python -m generators.dexed``: the ``run``, ``bank``, ``check`` and ``describe`` commands.

dexed-py is GPL-3.0 and an optional extra (``uv sync --extra dexed``); it is
imported on first use, so the rest of the toolkit works without it.
"""
