"""neurodyn.models.langevinflow."""
