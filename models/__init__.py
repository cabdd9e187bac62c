"""Models that estimate synthesizer parameters from audio: training, evaluation, sound matching."""
