"""Models that estimate synthesizer parameters from audio: training, evaluation, sound matching.

The commands (``python -m models.<name>``) are this package's modules: they
parse options and call the libraries, :mod:`models.common` (the network side),
:mod:`models.matching` (sound matching) and :mod:`models.evaluation` (evaluating a
run). No command imports another.
"""
