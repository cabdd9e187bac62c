"""The toolkit's base, imported by every other package and importing none of them.

* :mod:`core.errors`: the one exception bad input raises; :mod:`core.checks`:
  checks of single values at an API's boundary;
* :mod:`core.environment`: the ``INVERSYNTH_*`` variables and ``.env``;
  :mod:`core.commandline`: the parser, option types and ``run_cli`` (one-line
  errors, exit codes); :mod:`core.interrupts`: Ctrl-C and SIGTERM;
  :mod:`core.options`: the options every command shares;
* :mod:`core.storage`: result files written whole or not at all.
"""
