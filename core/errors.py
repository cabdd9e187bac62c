"""The one exception type the toolkit raises for bad input.

Every message echoes the offending value so that a one-line report is enough
to fix the call (``error: --num_examples must be > 0, got -3``).
"""


class InverSynthError(ValueError):
    """Bad input or state: a bad option, a malformed file, an unfinished dataset."""
