"""Sound matching: audio in and out, reconstruction metrics, prediction, resynthesis, reports.

Everything here that does not load a model runs without TensorFlow (the
resynthesis workers import this package's metrics).
"""
