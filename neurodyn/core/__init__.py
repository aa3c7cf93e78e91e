"""Shared math below every floor (data, models, metrics): pure functions of numbers, importing no other
neurodyn package.

- :mod:`neurodyn.core.arrays`: :func:`~neurodyn.core.arrays.to_numpy`, a torch tensor or anything numpy takes
  as an array (the metrics, the switching-GLM read-outs and the training scores take model outputs as they
  come).
- :mod:`neurodyn.core.basis`: spike-history bases (exponential, raised cosine) and history features, used
  by the switching-GLM simulator (:mod:`neurodyn.data.synthetic.switching_glm`) and the GLM family
  (:mod:`neurodyn.models.hmmglm`).
"""
