"""The Society (a Mesa model), its state, random streams, round metrics and the run loop."""
