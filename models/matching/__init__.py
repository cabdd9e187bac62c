"""Sound matching: audio in and out, reconstruction metrics, prediction, resynthesis,
the evaluation of a run and its folder, comparisons, reports.

Everything here that does not load a model runs without TensorFlow (the
resynthesis workers import this package's metrics).
"""
