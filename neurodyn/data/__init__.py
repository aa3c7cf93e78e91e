"""neurodyn.data."""
