"""Synthesizers, their parameters, and the datasets made with them (never imports TensorFlow).

* :mod:`generators.sound_generator`: the synth interface and the registry of synths
  (:mod:`generators.fm_generator`, :mod:`generators.sine_generator`, :mod:`generators.vst`);
* :mod:`generators.parameters`: quantized parameters, sampling, label encoding;
* :mod:`generators.schema`: the dataset file format; :mod:`generators.writer` writes
  it (one writer per file: :mod:`generators.lock`), :mod:`generators.dataset` reads it;
* :mod:`generators.pool`: worker processes that each hold a synth;
* :mod:`generators.dataset_options`: the options of the dataset-making commands
  (those every command shares, and the command-line plumbing, are :mod:`core`).
"""
