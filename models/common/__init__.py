"""The network side: model table, architectures, STFT front end, data pipeline, training,
run folders, parameter metrics and plots, the paper's figures."""
