"""neurodyn.metrics."""
