"""Sound matching: audio in and out, reconstruction metrics, prediction, the matchers.

Everything here that does not load a model runs without TensorFlow (the
resynthesis workers import this package's metrics). Evaluating a run is
:mod:`models.evaluation`, over this package.
"""
