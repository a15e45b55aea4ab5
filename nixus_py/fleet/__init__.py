"""The fleet: the core options every fleet has, evaluation of a fleet file, node selection."""
