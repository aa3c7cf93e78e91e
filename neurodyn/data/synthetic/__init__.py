"""neurodyn.data.synthetic."""
