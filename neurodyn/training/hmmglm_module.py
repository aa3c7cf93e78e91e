"""Lightning wrapper for the GLM / HMM-GLM switching-model family (Li et al., ICLR 2024).

Two fitting methods share the model's methods (:mod:`neurodyn.models.hmmglm`):

``method="em"`` (the paper's stochastic generalised EM)
    For every batch of sequences: E-step (forward-backward, no gradient) -> closed-form transition
    update from the batch's expected transition counts (``transition_update="batch"``, the paper's
    per-sequence re-estimation with ``batch_size: 1``; ``"epoch"`` instead pools the counts over the
    epoch and updates once at its end) -> ``n_inner`` Adam steps on ``-(Q + log prior)`` ->
    ``after_optimizer_step`` (diagonal reset, logit guard, Gaussian mean). The same procedure as
    :func:`neurodyn.models.hmmglm.fit.fit_em` with ``batch_size``.
``method="gradient"``
    Adam on ``-(log p(X) + log prior)`` with the marginal likelihood from the forward algorithm.

Validation logs ``valid/loss`` (negative marginal log-likelihood per bin), ``valid/ll_per_spike``
(marginal test log-likelihood per spike, nats; NaN when the validated sequences hold no spike) and, with
ground truth, ``valid/state_accuracy`` after optimal permutation matching.

Training logs ``train/loss_per_bin``, the epoch's mean over batches of the objective at the batch's last
optimiser step divided by the batch's bins. With ``method="gradient"`` that is ``-(log p(X) + log prior)``,
``valid/loss``'s quantity plus the prior term. With ``method="em"`` it is the M-step surrogate
``-(Q + log prior)``, where ``Q`` is the expected complete-data log-likelihood under the batch's
E-step posteriors (``log p(X) = Q + H(q) + KL(q || p(Z | X))``, so ``-Q`` exceeds ``-log p(X)`` by at least
the posteriors' entropy): it shows the M-step's progress and is not comparable with ``valid/loss``.
"""

from __future__ import annotations

import dataclasses

import lightning.pytorch as pl
import numpy as np
import torch

from neurodyn.errors import InputError
from neurodyn.models.hmmglm import HMMGLMConfig, build_model
from neurodyn.training.checkpoints import add_checkpoint_header, check_checkpoint_header
from neurodyn.training.module import (
    ReportSplitTest,
    TrainingDiverged,
    _finite_number,
    kept_after_divergence,
    model_config,
)

#: why HMMGLMModule refuses DDP
MULTI_PROCESS = ("HMMGLMModule trains in one process: its validation metrics (marginal likelihood, state "
                 "accuracy) are not gathered across DDP processes; use devices=1 (the E-step is cheap next to "
                 "a GPU's launch overhead at these sizes)")


def _file_key(dm, split: str) -> str:
    """The dataset in the DataModule's file that holds a split's held-in counts (for error messages)."""
    from neurodyn.training.datamodules import LFADSDataModule, NLBDataModule, SwitchingGLMDataModule

    if isinstance(dm, NLBDataModule):
        return "eval_input/eval_spikes_heldin" if split == "valid" else "train_input/train_spikes_heldin"
    if isinstance(dm, SwitchingGLMDataModule):
        return "spikes"
    if isinstance(dm, LFADSDataModule):  # Lorenz's cache file too
        return "valid_data" if split == "valid" else "train_data"
    return f"{split} spikes"


class HMMGLMModule(ReportSplitTest, pl.LightningModule):
    """Fit a switching GLM (``glm``, ``hmmglm``, ``gaussian``, ``onehot``) with EM or by gradient.

    Parameters
    ----------
    n_heldin, n_neurons, n_obs_bins, n_fwd_bins
        Data sizes, linked from the DataModule. The model's neurons are the held-in units (the batch's
        ``heldin`` spikes): on simulated switching-GLM data that is every neuron; on a prepared NLB file
        the held-out units, absent from test-phase evaluation trials, are left out.
    config
        Model configuration (:class:`~neurodyn.models.hmmglm.HMMGLMConfig`): variant, states, basis,
        link, emission, self-connections.
    method
        ``"em"`` or ``"gradient"``.
    lr
        Adam learning rate (paper: 0.01).
    n_inner
        M-step Adam steps per E-step (``method="em"``).
    transition_update
        ``"batch"`` (paper, default): re-estimate the transition matrix from each batch's expected
        transition counts right after its E-step, before its M-step; ``"epoch"``: pool the counts over the
        epoch and update once at its end (``method="em"``).
    """

    def __init__(
        self,
        n_heldin: int,
        n_neurons: int,
        n_obs_bins: int = 0,
        n_fwd_bins: int = 0,
        config: HMMGLMConfig | None = None,
        method: str = "em",
        lr: float = 0.01,
        n_inner: int = 50,
        transition_update: str = "batch",
    ):
        super().__init__()
        if method not in {"em", "gradient"}:
            raise InputError(f"must be 'em' or 'gradient', got {method!r}", field="model.method")
        if transition_update not in {"batch", "epoch"}:
            raise InputError(f"must be 'batch' or 'epoch', got {transition_update!r}", field="model.transition_update")
        _finite_number("model.lr", lr, positive=True)
        if isinstance(n_inner, bool) or not isinstance(n_inner, int) or n_inner < 1:
            raise InputError(f"must be a positive integer, got {n_inner!r}", field="model.n_inner")
        config = model_config(config, HMMGLMConfig)
        if config.seed is None:  # the run's seed: seed_everything seeds torch (config.yaml records it)
            config = dataclasses.replace(config, seed=int(torch.initial_seed()) % 2**63)
        self.save_hyperparameters()
        self.config = config
        self.n_heldin, self.n_neurons = int(n_heldin), int(n_neurons)
        try:
            self.model = build_model(self.n_heldin, config)
        except InputError as err:  # name the option as the command line / YAML spells it
            raise InputError(err.message, path=err.path, field=f"model.config.{err.field}" if err.field else
                             "model.config", involves=err.involves) from None
        self._m_step_setting = config.m_step_mode  # as given ("auto" too): hparams and config.yaml record it
        self._resolve_m_step(getattr(self.model, "m_step_mode", None))
        self.automatic_optimization = False
        self._xi_sum: torch.Tensor | None = None
        self._val: list[dict] = []
        self._run_data = self._run_files = None  # a loaded checkpoint's run: its data section and files
        # the held-in counts of the sequences this module was last fitted on in this process (on_fit_start): the
        # Wald read-out of connection_types takes its standard errors from them; None once a checkpoint is loaded
        self._fitted_spikes: np.ndarray | None = None

    def setup(self, stage: str) -> None:
        if self._trainer is not None and self.trainer.world_size > 1:
            raise InputError(MULTI_PROCESS, field="trainer.strategy")
        if self._trainer is not None and self.trainer.datamodule is not None:
            self._check_history(self.trainer.datamodule)
            self._check_observed(self.trainer.datamodule)
        if stage == "fit" and self.config.variant == "glm" and self.config.n_states != 1:
            # config.yaml records the n_states given; the model and its predictions have one state
            print(f"note: model.init_args.config.variant glm has one state; n_states {self.config.n_states} is not "
                  "used", flush=True)

    def _check_history(self, dm) -> None:
        """Sequences no longer than the spike-history window (``config.n_lags``) leave no bin to model: one
        line naming the option that made them short (``data.init_args.n_bins`` of a simulation in memory, or
        ``data.init_args.path``: the file, whose dataset the message names) and the window's option. The
        refusal involves the model's ``n_lags``: ``neurodyn fit`` names the option set last and where each
        came from (``--model.config.n_lags 50 on the command line; n_bins 40 in sim.yaml``)."""
        n_lags = self.config.n_lags
        window = "model.init_args.config.n_lags"
        for name, split in getattr(dm, "splits", {}).items():
            n_bins = split.heldin.shape[1]
            if n_bins > n_lags:
                continue
            too_short = f"not longer than the history window {window} ({n_lags} bins)"
            path = getattr(dm, "path", None)
            if path is None and getattr(dm, "sim_kwargs", {}).get("n_bins") is not None:  # simulated in memory
                raise InputError(f"sequences of {n_bins} bins are {too_short}", field="data.init_args.n_bins",
                                 involves=(window,))
            if path is None:  # no file option to name (a cache, arrays): the split's dataset
                raise InputError(f"sequences of {n_bins} bins ({name} split) are {too_short}",
                                 field=_file_key(dm, name))
            raise InputError(f"sequences of {n_bins} bins ({_file_key(dm, name)}, {name} split) are {too_short}",
                             path=path, field="data.init_args.path", involves=(window,))

    def _check_observed(self, dm) -> None:
        """Missing (NaN in the file) held-in counts: whole-bin gaps are noted, anything else is refused.

        The DataModules turn NaN counts into 0 and mark them in ``target_mask`` (LangevinFlow's loss skips
        them); a switching GLM has no missing-data model, so it reads them as "no spike" in its emissions
        and its spike history. nlb_tools marks bins outside the recorded data with NaN in every unit (a
        whole-bin gap, e.g. at the edge of a trial): those are read as zero counts and counted in one note
        on stdout. A NaN in some units of a bin only is not that pattern (a damaged file) and is refused in
        one line naming the file and dataset.
        """
        for name, split in getattr(dm, "splits", {}).items():
            if name in ("fit", "select"):  # subsets of "train": checked there
                continue
            missing = ~np.asarray(split.target_mask)[:, : split.heldin.shape[1], : split.heldin.shape[2]]
            if not missing.any():
                continue
            gaps = missing.all(axis=2)
            partial = missing.any(axis=2) & ~gaps
            if partial.any():
                rows = np.flatnonzero(partial.any(axis=1))
                raise InputError(
                    f"{int(missing[partial].sum())} missing (NaN) held-in counts in bins where other units were "
                    f"recorded, {name} split (rows {rows[:5].tolist()}{' ...' if len(rows) > 5 else ''}); a "
                    "switching GLM has no model of missing counts",
                    path=getattr(dm, "path", None), field=_file_key(dm, name),
                )
            if self._trainer is None or self.trainer.is_global_zero:
                print(f"note: {int(gaps.sum())} of {gaps.size} bins of the {name} split have no data (NaN in every "
                      f"held-in unit, as nlb_tools marks bins outside the recording; rows "
                      f"{np.flatnonzero(gaps.any(axis=1))[:5].tolist()}); the switching GLM reads them as zero "
                      "counts", flush=True)

    # -- the one-hot M-step: the setting ("auto") and the step that runs --------------------------------
    def _resolve_m_step(self, mode: str | None) -> None:
        """Make ``mode`` the one-hot model's M-step and ``self.config``'s ``m_step_mode`` (the config the model
        is built with, which prediction files record as ``model_config``); ``hparams`` keep the setting as given,
        which a resume compares (:func:`~neurodyn.training.checkpoints.reconcile_model_settings`)."""
        if mode is None:  # not the one-hot prior: no M-step mode
            return
        self.model.m_step_mode = mode
        self.config = dataclasses.replace(self.config, m_step_mode=mode)

    def resolved_settings(self) -> dict:
        """The settings ``"auto"`` left to the model, as they run (keys under ``model.init_args``): the one-hot
        M-step (:func:`~neurodyn.models.hmmglm.priors.resolve_m_step_mode`). Checkpoints record them as
        ``checkpoint["neurodyn"]["resolved"]`` (``neurodyn info`` shows them), prediction files as the root
        attribute ``m_step_mode``."""
        mode = getattr(self.model, "m_step_mode", None)
        return {} if mode is None else {"config.m_step_mode": mode}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        add_checkpoint_header(self, checkpoint)
        resolved = self.resolved_settings()
        if resolved:
            checkpoint["neurodyn"]["resolved"] = resolved

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        from neurodyn.training.checkpoints import DATA_FILES_KEY, RUN_SETTINGS_KEY

        check_checkpoint_header(self, checkpoint)
        self._continue_m_step(checkpoint)
        run = checkpoint.get(RUN_SETTINGS_KEY)
        run = run if isinstance(run, dict) else {}
        # the run's data section and files: prediction_extras finds a simulation's fitted sequences by them
        self._run_data, self._run_files = run.get("data"), run.get(DATA_FILES_KEY)
        self._fitted_spikes = None  # the weights are the checkpoint's: its run's records say what they were fitted on

    def _continue_m_step(self, checkpoint: dict) -> None:
        """A checkpoint's weights continue with the M-step that trained them: kill-and-resume must equal one
        uninterrupted run.

        The step a checkpoint ran is its ``resolved`` record, or, in a checkpoint written before it had one, its
        ``m_step_mode`` setting unless ``"auto"`` (those written before ``"auto"`` existed record ``"gumbel"``,
        the old default, whatever the link). A module left at ``"auto"`` takes that step (from Python,
        ``trainer.fit(module, ckpt_path=...)`` continued an exp-link checkpoint's Gumbel run with the softmax
        step); ``neurodyn fit --ckpt_path`` merges the checkpoint's settings into the model's already, and
        refuses a stated one that differs (a training setting). A resumed fit whose step is not what ``"auto"``
        takes for its link in a new run says so in one note.

        A module that states a step (not ``"auto"``) other than the checkpoint's follows the CLI's rule for a training
        setting: a resumed fit (``trainer.fit(module, ckpt_path=...)``) is refused in one line, as ``neurodyn fit
        --ckpt_path`` refuses it (the run would continue with another M-step than it was trained with, and
        kill-and-resume would differ from one run); anything else that loads the checkpoint (``load_from_checkpoint``,
        ``trainer.predict`` / ``validate`` / ``test``) keeps the checkpoint's step, with the note ``neurodyn
        predict`` prints, so that what a prediction file or ``resolved_settings`` records is the step that trained
        the weights. Before, the stated step ran without a word (to train on with another step, set
        ``module.model.m_step_mode`` after loading, or start a new run)."""
        if getattr(self.model, "m_step_mode", None) is None:
            return
        from neurodyn.models.hmmglm.priors import M_STEP_MODES, resolve_m_step_mode

        recorded = ((checkpoint.get("neurodyn") or {}).get("resolved") or {}).get("config.m_step_mode")
        saved = ((checkpoint.get("hyper_parameters") or {}).get("config") or {})
        setting = saved.get("m_step_mode") if isinstance(saved, dict) else getattr(saved, "m_step_mode", None)
        ran = recorded if recorded in M_STEP_MODES[1:] else setting if setting in M_STEP_MODES[1:] else None
        if ran is None:  # "auto" recorded without the step: a checkpoint of this rule, which the model resolved
            return
        trainer = self._trainer
        fitting = trainer is not None and trainer.state.fn == "fit"
        stated = self.model.m_step_mode
        if self._m_step_setting != "auto" and stated != ran:
            option = "model.config.m_step_mode"
            asked = repr(self._m_step_setting) + (f" (the {stated!r} step with link {self.model.link!r})"
                                                  if self._m_step_setting != stated else "")
            # (the step, not the checkpoint's setting: load_from_checkpoint(config=...) writes its arguments over
            # the checkpoint's hyper-parameters before this hook reads them)
            if fitting:
                raise InputError(f"resuming continues the checkpoint's run, trained with the {ran!r} M-step, but the "
                                 f"module asks for {asked}: build it with 'auto' (or {ran!r}), or start a new run to "
                                 "change it", path=getattr(trainer, "ckpt_path", None), field=option)
            what = getattr(trainer.state.fn, "value", None) if trainer is not None else None
            print(f"note: {option}: a training setting; {what or 'loading'} keeps the checkpoint's {ran!r} M-step (the "
                  f"{asked} asked for is not used)", flush=True)
            self._resolve_m_step(ran)
            return
        adopted = self._m_step_setting == "auto" and ran != self.model.m_step_mode
        if adopted:
            self._resolve_m_step(ran)
        default = resolve_m_step_mode("auto", self.model.link)
        if fitting and self.model.m_step_mode == ran != default and (adopted or recorded is None):
            why = ("the step it records" if recorded else f"its setting {setting!r}" + (
                ": checkpoints written before 'auto' existed record 'gumbel', the old default" if setting == "gumbel"
                else ""))
            print(f"note: model.init_args.config.m_step_mode: a fit from this checkpoint continues its {ran!r} "
                  f"M-step ({why}); in a new run 'auto' takes {default!r} with link {self.model.link!r}", flush=True)

    @staticmethod
    def _spikes(batch) -> torch.Tensor:
        return batch["heldin"]

    def on_fit_start(self) -> None:
        """Check every split's counts (one-line InputError) and, on a fresh start, set the biases
        from the training data's mean counts (the paper's initialisation)."""
        from neurodyn.models.hmmglm import validate_spikes

        dm = self.trainer.datamodule
        splits = getattr(dm, "splits", {})
        cfg = self.config
        for name, split in splits.items():
            validate_spikes(split.heldin, name=f"{name} spikes", n_lags=cfg.n_lags, emission=cfg.emission,
                            path=getattr(dm, "path", None))
        fit = getattr(dm, "fit_split", "train")  # the training trials minus a carved select split
        if self.trainer.ckpt_path is None:  # trained on from these weights on this data: a loaded run no longer says
            self._run_data = self._run_files = None  # what the model was fitted on (prediction_extras)
        # what connection_types' read-out takes its standard errors from (prediction_extras); None where the fit's
        # data are not known here (plain dataloaders): never an earlier fit's
        self._fitted_spikes = np.asarray(splits[fit].heldin) if fit in splits else None
        if self.trainer.ckpt_path is None and fit in splits:
            with torch.no_grad():
                self.model.init_bias(torch.as_tensor(splits[fit].heldin, device=self.device))

    # -- training -------------------------------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        self._xi_sum = None

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        spikes = self._spikes(batch)
        n_bins = spikes.shape[0] * spikes.shape[1]
        if self.hparams.method == "em":
            posterior = self.model.e_step(spikes)
            xi = posterior.expected_transitions.sum(0)
            if self.hparams.transition_update == "batch":  # paper: P from this batch's ξ, before its M-step
                self.model.update_transitions(xi)
            else:
                self._xi_sum = xi if self._xi_sum is None else self._xi_sum + xi
            for _ in range(self.hparams.n_inner):
                opt.zero_grad()
                loss = self.model.m_step_loss(spikes, posterior)
                self.manual_backward(loss)
                opt.step()
                self.model.after_optimizer_step()
        else:
            opt.zero_grad()
            loss = -(self.model.marginal_log_likelihood(spikes).sum() + self.model.log_prior())
            self.manual_backward(loss)
            opt.step()
            self.model.after_optimizer_step()
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"non-finite loss at epoch {self.current_epoch}, step {self.global_step}"
                                   f"{kept_after_divergence(self._trainer)}")
        self.log("train/loss_per_bin", loss.detach() / n_bins, on_step=False, on_epoch=True, batch_size=len(spikes))
        return loss

    def on_train_epoch_end(self) -> None:
        if self.hparams.method != "em" or self._xi_sum is None:
            return
        xi = self._xi_sum
        if self.trainer.world_size > 1:
            xi = self.trainer.strategy.reduce(xi, reduce_op="sum")
        self.model.update_transitions(xi)

    def configure_optimizers(self):
        return torch.optim.Adam(self.model.parameters(), lr=self.hparams.lr)

    # -- validation -----------------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._val = []

    def validation_step(self, batch, batch_idx):
        spikes = self._spikes(batch)
        with torch.no_grad():
            ll = self.model.marginal_log_likelihood(spikes)
            posterior = self.model.e_step(spikes)
        item = {"ll": ll.sum().item(), "bins": spikes.shape[0] * spikes.shape[1], "spikes": spikes.sum().item()}
        if "true_states" in batch:
            item["gamma"] = posterior.posteriors.float().cpu().numpy()
            item["states"] = batch["true_states"].cpu().numpy()
        self._val.append(item)

    def on_validation_epoch_end(self) -> None:
        if not self._val:
            return
        ll = sum(v["ll"] for v in self._val)
        bins = sum(v["bins"] for v in self._val)
        n_spikes = sum(v["spikes"] for v in self._val)
        self.log(f"{self.stage_prefix}/loss", -ll / bins, prog_bar=True)
        # per spike: undefined (NaN) for validation sequences without a spike (dividing by 1 logged the total
        # log-likelihood under this name)
        self.log(f"{self.stage_prefix}/ll_per_spike", ll / n_spikes if n_spikes > 0 else float("nan"))
        if "gamma" in self._val[0] and self.model.n_states > 1:
            from neurodyn.metrics.states import state_accuracy

            gamma = np.concatenate([v["gamma"] for v in self._val])
            states = np.concatenate([v["states"] for v in self._val])
            acc = state_accuracy(states, gamma.argmax(-1), n_states=self.model.n_states)
            self.log(f"{self.stage_prefix}/state_accuracy", float(acc), prog_bar=True)
        self._val = []

    # -- prediction -----------------------------------------------------------------------------
    def predict_step(self, batch, batch_idx, dataloader_idx=0):
        from neurodyn.models.hmmglm.inference import viterbi

        spikes = self._spikes(batch)
        with torch.no_grad():
            posterior = self.model.e_step(spikes)
            path = viterbi(self.model.log_initial(), self.model.log_transitions(), self.model.log_emissions(spikes))
        return {"posteriors": posterior.posteriors, "viterbi": path, "log_marginal": posterior.log_marginal,
                "index": batch["index"]}

    def _run_sequences(self, dm):
        """The sequences the checkpoint's run was fitted on, for ``connection_types``' standard errors, where ``dm`` is
        a switching-GLM simulation or file predicted with other data settings than the run's
        (:func:`~neurodyn.training.predictions.fitted_train_rows` gave None): found again from the run's recorded
        data section when ``dm`` holds the run's simulation; ``False`` (and a note naming the setting) when it holds
        another one; None where nothing is recorded or ``dm`` is other data (``dm``'s own fit split, as before).

        ``predict --data.init_args.n_train 3`` of a run fitted on the first 5 sequences read its types out with
        standard errors from sequences 0-2 (and ``--data.init_args.seed 1`` from another simulation altogether),
        with nothing said. The simulation is the run's when its file has the SHA-256 the run recorded (else the same
        path), or, simulated in memory, when every simulator argument is the run's (None: the simulator's default);
        the fitted sequences are then those the run's ``n_train``, ``select_fraction`` and ``select_seed`` fit on by the
        DataModule's own rule (:meth:`~neurodyn.training.datamodules.SwitchingGLMDataModule.fitted_sequences`: the
        first ``n_train`` less the select split), wherever this command's ``n_train`` puts them."""
        import inspect
        import os

        from neurodyn.data.synthetic.switching_glm import simulate_switching_glm
        from neurodyn.training.datamodules import SwitchingGLMDataModule

        run = self._run_data
        if not isinstance(dm, SwitchingGLMDataModule) or not isinstance(run, dict):
            return None
        then = run.get("init_args") if isinstance(run.get("init_args"), dict) else {}
        sim = dm.simulation
        if str(run.get("class_path")).rpartition(".")[2] != "SwitchingGLMDataModule":
            why = f"data.class_path {type(dm).__name__} is not the run's {run.get('class_path')}"
        elif (then.get("path") is None) != (dm.path is None):
            why = (f"data.init_args.path {dm.path} is not the run's in-memory simulation" if then.get("path") is None
                   else f"data.init_args.path: the run read {then['path']}, not an in-memory simulation")
        elif dm.path is not None:
            from neurodyn.io import file_digest

            files = self._run_files if isinstance(self._run_files, dict) else {}
            record = files.get("data.init_args.path")
            recorded = record.get("sha256") if isinstance(record, dict) else None
            same = (recorded == file_digest(dm.path)["sha256"]) if recorded else \
                os.path.abspath(then["path"]) == os.path.abspath(dm.path)
            why = None if same else f"data.init_args.path {dm.path} is not the file the run read ({then['path']})"
        else:
            defaults = inspect.signature(simulate_switching_glm).parameters
            n_sequences, n_bins, n_neurons = np.shape(sim.spikes)
            now = {"n_states": len(sim.transitions), "n_neurons": n_neurons, "n_sequences": n_sequences,
                   "n_bins": n_bins, "seed": int(sim.seed)}
            ran = {key: defaults[key].default if then.get(key) is None else then[key] for key in now}
            key = next((key for key in now if now[key] != ran[key]), None)
            why = None if key is None else f"data.init_args.{key} {now[key]} is not the run's {ran[key]}"
        if why is not None:
            print(f"note: connection_types left out: their standard errors come from the sequences the checkpoint's "
                  f"run was fitted on, and {why} (predict the run's simulation for them)", flush=True)
            return False
        n_train, fraction = int(then.get("n_train") or 0), float(then.get("select_fraction") or 0.0)
        if not 0 < n_train < len(sim.spikes):
            return None
        rows = SwitchingGLMDataModule.fitted_sequences(n_train, fraction or None, int(then.get("select_seed") or 0),
                                                       field="data.init_args.select_fraction")[1]
        return np.asarray(sim.spikes, dtype=np.float32)[rows]

    def prediction_attrs(self) -> dict:
        """Root attributes of ``neurodyn predict`` files: the variant, what ``coupling`` is summed over (the
        model as built: ``n_basis`` is 1 for the exponential basis whatever ``config.n_basis`` says) and the
        definitions of the couplings and types (``coupling_definition``, ``connection_types_definition``;
        one-hot: ``coupling_softmax_definition``, ``connection_types_argmax_definition``, ``connectome_definition``
        too; Gaussian prior: ``shared_mean_definition``); one-hot: ``m_step_mode``, the M-step that trained the
        model (``"gumbel"`` or ``"softmax"``: what ``"auto"`` resolved to, :meth:`resolved_settings`), with
        ``m_step_mode_definition`` (and ``m_step_phases`` where :func:`~neurodyn.models.hmmglm.fit.fit_em` ran on the
        model), as :func:`~neurodyn.models.hmmglm.evaluate.export_model_h5` writes them
        (:func:`~neurodyn.models.hmmglm.evaluate.m_step_attrs`)."""
        from neurodyn.models.hmmglm.evaluate import m_step_attrs
        from neurodyn.models.hmmglm.readout import coupling_arrays, prior_arrays, type_attrs

        cfg, model = self.config, self.model
        attrs = {"variant": cfg.variant, "n_states": int(model.n_states), "n_lags": int(model.n_lags),
                 "basis": cfg.basis, "n_basis": int(model.n_basis), **coupling_arrays(model)[1],
                 **type_attrs(model), **prior_arrays(model)[1]}
        attrs.update({key.rsplit(".", 1)[-1]: value for key, value in self.resolved_settings().items()})
        attrs.update(m_step_attrs(model))  # the export's record of the step and its definition: one text for both
        if cfg.basis == "exponential":
            attrs.update(decay=float(cfg.decay), span=float(cfg.span))
        return attrs

    @torch.no_grad()
    def prediction_extras(self, dm, fitted_rows=None) -> dict[str, np.ndarray]:
        """The fitted model for ``neurodyn predict``: couplings, connection types, transitions, biases.

        Couplings and types are :func:`~neurodyn.models.hmmglm.readout.coupling_arrays` and
        :func:`~neurodyn.models.hmmglm.readout.type_arrays`, as
        :func:`~neurodyn.models.hmmglm.evaluate.export_model_h5` writes them: ``coupling``, for the one-hot model
        the hard-type couplings (most probable type x strength), and for the one-hot model ``coupling_softmax``,
        the softmax mixture ``model.coupling_matrices()`` that the posteriors are computed with;
        ``connection_types`` by the one read-out rule of every switching GLM
        (:func:`neurodyn.models.hmmglm.readout.read_out_types`: Wald test, ``z`` fixed in advance), with the
        standard errors estimated on the sequences the model was fitted on (the training split less any
        select split), and for the one-hot model ``connection_types_argmax``, each state's adjacency logits' argmax
        types; the fitted prior (:func:`~neurodyn.models.hmmglm.readout.prior_arrays`: one-hot ``connectome``,
        Gaussian ``shared_mean``).
        ``fitted_rows`` (:func:`neurodyn.training.predictions.fitted_train_rows`) says where those sequences are in
        ``dm``: rows of its ``train`` split (the run's own file or another that holds them), ``False`` when it does
        not hold them (then no ``connection_types``), or None: a module fitted in this process (``trainer.fit``, no
        checkpoint loaded since) takes the sequences it was fitted on, which it keeps at the fit's start, whatever data
        ``dm`` holds (it read the types out on ``dm``'s own fit split: another simulation's for
        ``trainer.predict(module, other)``); else a switching-GLM simulation or file predicted with other data
        settings than the checkpoint's run (:meth:`_run_sequences`: the run's fitted sequences where ``dm`` holds the
        run's simulation, else no ``connection_types``, with a note), or nothing recorded: ``dm``'s own fit split.
        """
        from neurodyn.models.hmmglm.readout import coupling_arrays, prior_arrays, type_arrays

        if fitted_rows is None and self._fitted_spikes is not None:  # fitted in this process: on these sequences
            train = torch.as_tensor(self._fitted_spikes, device=self.device)
        elif fitted_rows is None:
            run = self._run_sequences(dm)  # a switching-GLM simulation predicted with other data settings
            if run is False:
                train = None
            elif run is not None:
                train = torch.as_tensor(run, device=self.device)
            else:
                train = torch.as_tensor(dm.splits[getattr(dm, "fit_split", "train")].heldin, device=self.device)
        elif fitted_rows is False:
            train = None
        else:
            train = torch.as_tensor(np.asarray(dm.splits["train"].heldin)[fitted_rows], device=self.device)
        return {
            **{name: value.float().cpu().numpy() for name, value in coupling_arrays(self.model)[0].items()},
            **{name: value.cpu().numpy() for name, value in type_arrays(self.model, train)[0].items()},
            "transitions": self.model.log_transitions().exp().float().cpu().numpy(),
            "initial": self.model.log_initial().exp().float().cpu().numpy(),
            "bias": self.model.bias.detach().float().cpu().numpy(),
            **{name: value.float().cpu().numpy() for name, value in prior_arrays(self.model)[0].items()},
        }
