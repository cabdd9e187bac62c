"""Shared model code: architectures, the STFT front end, data pipeline, metrics, runs."""
