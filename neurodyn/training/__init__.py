"""neurodyn.training."""
