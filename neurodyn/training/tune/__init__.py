"""``neurodyn tune``: hyperparameter search for LangevinFlow on Ray Tune (the ``tune`` extra).

::

    neurodyn tune --config configs/langevinflow/lorenz.yaml --search configs/tune/langevinflow.yaml \\
        --scheduler pbt --samples 8 --cpus-per-trial 1 --out runs/tune-lorenz

``--config`` is an ordinary ``neurodyn fit`` config (LightningCLI YAML; several are stacked, later ones
win, as fit stacks them: a later ``model`` / ``data`` whose ``class_path`` names another class keeps only the
earlier ``init_args`` that class accepts, :func:`~neurodyn.training.tune.trial.stack_configs`). ``--search``
names the hyperparameters to search and their ranges (``configs/tune/*.yaml``)::

    space:                                   # short name: distribution or fixed value
      lr: {loguniform: [1.0e-4, 1.0e-2]}
      weight_decay: {loguniform: [1.0e-6, 1.0e-3]}
      dropout: {uniform: [0.0, 0.3]}
      cd_keep_prob: {uniform: [0.5, 1.0]}
      kl_max: {loguniform: [0.1, 1.0]}
      gamma: {uniform: [0.05, 0.6]}
      hidden_size: {choice: [32, 64]}
    epochs: 100                              # optional: epochs per trial (default trainer.max_epochs)
    pbt: {perturbation_interval: 10, burn_in_period: 10, quantile_fraction: 0.25,
          resample_probability: 0.25, perturbation_factors: [1.2, 0.8], synch: true}
    asha: {grace_period: 10, reduction_factor: 3}

The names are those of :class:`~neurodyn.training.module.LangevinFlowModule` (``lr``, ``weight_decay``)
and of :class:`~neurodyn.models.langevinflow.LangevinFlowConfig` (``dropout``, ``cd_keep_prob`` -- the
coordinated-dropout *keep* probability --, ``kl_max`` -- the KL weight --, ``gamma``, ``hidden_size``,
``latent_dim``, ``ff_dim``, ``kl_ramp_epochs``, ``velocity_prior_var``); :data:`HYPERPARAMETERS` lists them.

Schedulers
----------
``pbt``
    Population-based training (Jaderberg et al. 2017, arXiv:1711.09846) as AutoLFADS runs it (Keshtkaran
    et al. 2022, Nature Methods 19:1572, doi:10.1038/s41592-022-01675-0): every
    ``perturbation_interval`` epochs the worst quarter of the population copies the checkpoint of a
    trial in the best quarter (*exploit*) and perturbs its hyperparameters (*explore*: times 0.8 or 1.2,
    or resampled with probability ``resample_probability``; clipped to the search range). ``synch:
    true`` (default) waits until every trial has reached the perturbation epoch, so trials are compared
    at equal epochs (AutoLFADS's generations); ``false`` is Ray's asynchronous PBT. Only values that
    leave the weight shapes alone are perturbed; ``hidden_size``, ``latent_dim``, ``ff_dim`` and
    ``kl_ramp_epochs`` are sampled once and travel with the copied checkpoint. Checkpoints are written
    at perturbation epochs and at the last epoch, and all are kept (an exploit may copy any of them):
    about ``samples x epochs / perturbation_interval`` files.
``asha``
    Asynchronous successive halving (Li et al. 2020, arXiv:1810.05934): trials are stopped early at
    rungs ``grace_period * reduction_factor**k`` epochs unless they are in the top ``1/reduction_factor``.
    A checkpoint every epoch; each trial keeps its best and its latest.

Selection
---------
Every trial reports, once per epoch, the module's ``valid/loss``: the masked Poisson NLL of the
*select* split (the KL weight does not enter it, so trials with different ``kl_max`` compare fairly, as
AutoLFADS compares validation NLL). The select split is a seeded ``--select-fraction`` of the *training*
trials held out from the fit (:func:`select_split`, the fit harness's ``NeuralDataModule.carve_select``),
unless the config's ``data.select_fraction`` carved one already (a ``--select-fraction`` given as well is not
used, and a note says so). The DataModule's validation trials -- the
NLB evaluation trials that ``neurodyn evaluate`` scores, the Lorenz / LFADS valid trials whose rates are
reported -- are never seen, and ``best.yaml`` records the split (``data.init_args.select_fraction`` /
``select_seed``) so a refit trains and selects on the same trials. Nothing is selected on true rates or on
report/test trials.
The best checkpoint is the kept checkpoint with the lowest ``valid/loss`` over all trials (each holds a
``report.json`` with its trial, epoch and hyperparameters).
Every trial starts from the config's ``seed_everything`` (``true``: one seed drawn for the whole search), so
trials differ by their hyperparameters only; ``false`` (``neurodyn fit``: no seed) is refused, in one line.

Hyperparameters after an exploit come from the Tune trial config
-----------------------------------------------------------------
A trial always builds its module from *its own* Tune config and then restores the copied Lightning
checkpoint's weights, optimiser and scheduler state. Restoring the optimiser would bring back the
donor's learning rate (ray-project/ray#36660); :class:`TrialLearningRate` writes the module's ``lr`` (the
trial's) back into the optimiser, and into the scheduler's base learning rate (cosine: the rate at the
current epoch of the cosine from the new ``lr``). Every report carries ``lr_used``, the rate of the
optimiser at the epoch's first step, so the result files show which rate was applied.

Outputs (``--out``, default ``runs/tune/<config>-<scheduler>-<UTC time>``), written to a temporary folder
and renamed when the search ends (nothing partial is left on an error, Ctrl-C or SIGTERM, and the Ray processes
the command started are ended). ``--out`` is locked (``.<name>.lock``): a second search to it is refused at once;
a killed search's temporary folder is removed by the next search to it:

- ``trials.csv`` (and ``trials.txt``, the rich table printed at the end): one row per trial, its best
  (lowest over every epoch it reported) and last ``valid/loss`` and its hyperparameters at the end, from every
  report as the driver received it (:func:`~neurodyn.training.tune.results.reported_history`);
- ``perturbations.csv`` (PBT): every exploit / explore step: the trial, the trial it copied, the epoch it had
  reached, and each hyperparameter before (the trial's own; Ray's ``pbt_global.txt`` logs the donor's) and after
  (the header alone when PBT made no step, e.g. a ``perturbation_interval`` beyond the epochs);
- ``best.yaml``: the fit config with the best trial's hyperparameters, ready for ``neurodyn fit``;
- ``best.ckpt``: the Lightning checkpoint of the best trial at its best epoch, with its data files' record
  (size, SHA-256, trials) as a ``fit`` checkpoint has
  (``neurodyn predict --config best.yaml --ckpt_path best.ckpt``);
- ``summary.json``: metric, split, best trial, value, epoch, command, seconds;
- ``ray/``: Ray Tune's experiment folder (per-trial ``progress.csv`` / ``result.json``; a trial that PBT
  paused and restarted may lack rows there: Ray copies them back from ``--out`` before its latest sync).

Runs locally by default (``ray.init`` with ``--num-cpus`` CPUs, default ``cpus-per-trial x samples``
capped at the machine's cores); ``--address ray://host:10001`` (or ``auto``) joins an existing cluster,
whose nodes must have neurodyn installed and see ``--out`` (a shared file system).

Reproducibility
---------------
Two runs with the same ``--seed`` (same inputs, same Ray version, trials on CPU) sample the same
configurations, and name their trials alike (``trial_0000``, ``trial_0001``, ... in order of creation).
PBT's draws (the donor of an exploit, the explore factors and resamples) come from a generator seeded per
decision with the run seed, the trial's index and the epoch (:func:`~neurodyn.training.tune.pbt.seeded_pbt`;
Ray's own draws from the driver's global generators differed from run to run). So:

- synchronous PBT (``synch: true``, the default) makes the same perturbations and trains the same trials,
  with the same per-epoch values, ``trials.csv``, ``best.yaml`` and ``best.ckpt``, however many trials
  run at once: every decision waits for the whole population at the same epoch, and each trial restarts
  from a checkpoint with the config's seed;
- asynchronous PBT (``synch: false``) and ASHA are reproducible only with one trial at a time
  (``--num-cpus`` equal to ``--cpus-per-trial``): with concurrent trials, which trials have reported
  (and which checkpoint a donor has) when a decision is made depends on timing;
- never the same: Ray's clock and process columns (``time_*``, ``timestamp``, ``pid``, Ray's own
  ``trial_id``), ``summary.json``'s ``seconds``; GPU trials only as far as the kernels are deterministic.
"""

from neurodyn.training.tune.search import SearchFailed, cli_main, run_search
from neurodyn.training.tune.space import HYPERPARAMETERS, Hyperparameter, apply_hyperparameters, load_search
from neurodyn.training.tune.trial import (
    METRIC,
    MODE,
    TrialLearningRate,
    build_model_and_data,
    record_select_split,
    select_split,
)

__all__ = [
    "HYPERPARAMETERS",
    "METRIC",
    "MODE",
    "Hyperparameter",
    "SearchFailed",
    "TrialLearningRate",
    "apply_hyperparameters",
    "build_model_and_data",
    "cli_main",
    "load_search",
    "record_select_split",
    "run_search",
    "select_split",
]
