"""neurodyn.viz."""
