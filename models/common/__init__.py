"""The network side: model table, architectures, STFT front end, data pipeline, training,
run folders, metrics and plots, the evaluation of a run, the paper's figures."""
