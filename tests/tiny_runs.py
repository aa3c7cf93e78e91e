"""Command-line arguments of a tiny Lorenz fit (seconds on a CPU), shared by the test files that make run folders
with it (``tests/`` is on pytest's ``pythonpath``, as for :mod:`h5_files`)."""

TINY = [
    "--data", "LorenzDataModule",
    "--data.n_conditions", "4", "--data.trials_per_condition", "5", "--data.batch_size", "8",
    "--model.init_args.config.hidden_size", "8", "--model.init_args.config.ff_dim", "16",
    "--trainer.enable_model_summary", "false", "--trainer.enable_progress_bar", "false",
    "--trainer.accelerator", "cpu",
]
