"""neurodyn.models.hmmglm."""
