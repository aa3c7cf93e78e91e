"""neurodyn.models."""
