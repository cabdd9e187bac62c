"""Synthesizers, their parameters, and the dataset writer (never imports TensorFlow)."""
