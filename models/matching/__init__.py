"""Sound matching: a sound in, synth settings out (network, lookup, search, hybrid)."""
