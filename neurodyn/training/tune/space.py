"""Search spaces of ``neurodyn tune``: the searchable hyperparameters, the search-space file, and fit
configs read as plain mappings (stacked YAML files, values written at their places)."""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neurodyn.errors import InputError
from neurodyn.training.parser_errors import combination, read_yaml


@dataclass(frozen=True)
class Hyperparameter:
    """Where a searchable hyperparameter lives in a fit config, and whether PBT may perturb it."""

    path: tuple[str, ...]
    mutable: bool
    kind: str  # "float" or "int"


_MODEL = ("model", "init_args")
_CFG = ("model", "init_args", "config")

#: Searchable hyperparameters: short name -> place in the fit config. ``mutable`` ones are perturbed by PBT;
#: the others change weight shapes (or the schedule length) and are only sampled at the start.
HYPERPARAMETERS: dict[str, Hyperparameter] = {
    "lr": Hyperparameter((*_MODEL, "lr"), True, "float"),
    "weight_decay": Hyperparameter((*_MODEL, "weight_decay"), True, "float"),
    "dropout": Hyperparameter((*_CFG, "dropout"), True, "float"),
    "cd_keep_prob": Hyperparameter((*_CFG, "cd_keep_prob"), True, "float"),
    "kl_max": Hyperparameter((*_CFG, "kl_max"), True, "float"),
    "gamma": Hyperparameter((*_CFG, "gamma"), True, "float"),
    "velocity_prior_var": Hyperparameter((*_CFG, "velocity_prior_var"), True, "float"),
    "hidden_size": Hyperparameter((*_CFG, "hidden_size"), False, "int"),
    "latent_dim": Hyperparameter((*_CFG, "latent_dim"), False, "int"),
    "ff_dim": Hyperparameter((*_CFG, "ff_dim"), False, "int"),
    "kl_ramp_epochs": Hyperparameter((*_CFG, "kl_ramp_epochs"), False, "int"),
}

_DISTRIBUTIONS = ("uniform", "loguniform", "choice")
_SEARCH_KEYS = {"space", "epochs", "pbt", "asha"}
_PBT_KEYS = {"perturbation_interval", "burn_in_period", "quantile_fraction", "resample_probability",
             "perturbation_factors", "synch"}
_ASHA_KEYS = {"grace_period", "reduction_factor"}
_MODULES = ("LangevinFlowModule", "neurodyn.training.module.LangevinFlowModule",
            "neurodyn.training.LangevinFlowModule")


# -- config files ---------------------------------------------------------------------------------------
def merge_configs(base: dict, over: dict) -> dict:
    """Deep merge of config mappings (later wins; lists are replaced, as LightningCLI stacks configs)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_configs(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _number(value: Any, path: Path, field: str) -> float:
    """A YAML number; PyYAML reads ``1e-4`` (no dot) as a string, so numeric strings are accepted."""
    if isinstance(value, bool):
        raise InputError(f"expected a number, got {value!r}", path=path, field=field)
    if isinstance(value, (int, float)):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(f"expected a number, got {value!r}", path=path, field=field) from None


def load_search(path: str | os.PathLike) -> dict:
    """Read and check a search-space file; returns ``{'space': {name: spec}, 'epochs', 'pbt', 'asha'}``.

    Each ``spec`` is ``("fixed", value)``, ``("uniform", lo, hi)``, ``("loguniform", lo, hi)`` or
    ``("choice", [values])``. Raises :class:`InputError` naming the file and the field.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.yaml"
    >>> _ = p.write_text("space:\\n  lr: {loguniform: [1e-4, 1e-2]}\\n  bogus: 1\\n")
    >>> load_search(p)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    neurodyn.errors.InputError: .../s.yaml: space.bogus: unknown hyperparameter; known: lr, weight_decay, ...
    """
    path = Path(path)
    data = read_yaml(path, "--search")
    unknown = sorted(set(data) - _SEARCH_KEYS)
    if unknown:
        raise InputError(f"unknown key; expected {sorted(_SEARCH_KEYS)}", path=path, field=unknown[0])
    raw = data.get("space")
    if not isinstance(raw, dict) or not raw:
        raise InputError("needs a non-empty mapping of hyperparameters", path=path, field="space")
    space: dict[str, tuple] = {}
    for name, spec in raw.items():
        field = f"space.{name}"
        if name not in HYPERPARAMETERS:
            raise InputError(f"unknown hyperparameter; known: {', '.join(HYPERPARAMETERS)}", path=path, field=field)
        kind = HYPERPARAMETERS[name].kind
        if not isinstance(spec, dict):
            space[name] = ("fixed", _cast(_number(spec, path, field), kind, path, field))
            continue
        if len(spec) != 1 or next(iter(spec)) not in _DISTRIBUTIONS:
            raise InputError(f"expected one of {{{', '.join(_DISTRIBUTIONS)}: ...}} or a value, got {spec!r}",
                             path=path, field=field)
        dist, args = next(iter(spec.items()))
        if not isinstance(args, list) or not args:
            raise InputError(f"{dist} needs a list, got {args!r}", path=path, field=field)
        values = [_cast(_number(v, path, field), kind, path, field) for v in args]
        if dist == "choice":
            space[name] = ("choice", values)
            continue
        if len(values) != 2 or not all(map(math.isfinite, values)) or not values[0] < values[1]:
            raise InputError(f"{dist} needs [low, high], finite, with low < high, got {args!r}", path=path, field=field)
        if kind == "int":
            raise InputError("is an integer; use choice: [...]", path=path, field=field)
        if dist == "loguniform" and values[0] <= 0:
            raise InputError(f"loguniform needs low > 0, got {args!r}", path=path, field=field)
        space[name] = (dist, *values)
    out = {"space": space, "epochs": None, "pbt": {}, "asha": {}}
    if data.get("epochs") is not None:
        out["epochs"] = _positive_int(data["epochs"], path, "epochs")
    for section, keys in (("pbt", _PBT_KEYS), ("asha", _ASHA_KEYS)):
        opts = data.get(section) or {}
        if not isinstance(opts, dict):
            raise InputError("expected a mapping", path=path, field=section)
        bad = sorted(set(opts) - keys)
        if bad:
            raise InputError(f"unknown option; expected {sorted(keys)}", path=path, field=f"{section}.{bad[0]}")
        out[section] = _scheduler_options(section, opts, path)
    return out


def _cast(value: float, kind: str, path: Path, field: str):
    if kind == "int":
        if not math.isfinite(float(value)) or float(value) != int(value):
            raise InputError(f"expected an integer, got {value!r}", path=path, field=field)
        return int(value)
    return float(value)


def _positive_int(value, path: Path, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"must be a positive integer, got {value!r}", path=path, field=field)
    return value


def _scheduler_options(section: str, opts: dict, path: Path) -> dict:
    out = dict(opts)
    for key in ("perturbation_interval", "grace_period", "reduction_factor"):
        if key in out:
            out[key] = _positive_int(out[key], path, f"{section}.{key}")
    if "reduction_factor" in out and out["reduction_factor"] < 2:
        raise InputError(f"must be >= 2, got {out['reduction_factor']}", path=path, field=f"{section}.reduction_factor")
    if "burn_in_period" in out:
        value = out["burn_in_period"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InputError(f"must be an integer >= 0, got {value!r}", path=path, field=f"{section}.burn_in_period")
    for key in ("quantile_fraction", "resample_probability"):
        if key in out:
            value = _number(out[key], path, f"{section}.{key}")
            if not 0 <= value <= (0.5 if key == "quantile_fraction" else 1):
                raise InputError(f"out of range, got {value!r}", path=path, field=f"{section}.{key}")
            out[key] = float(value)
    if "synch" in out and not isinstance(out["synch"], bool):
        raise InputError(f"must be true or false, got {out['synch']!r}", path=path, field=f"{section}.synch")
    if "perturbation_factors" in out:
        factors = out["perturbation_factors"]
        if not isinstance(factors, list) or len(factors) != 2:
            raise InputError(f"expected [up, down], got {factors!r}", path=path,
                             field=f"{section}.perturbation_factors")
        out["perturbation_factors"] = tuple(float(_number(f, path, f"{section}.perturbation_factors")) for f in factors)
        if not all(math.isfinite(f) and f > 0 for f in out["perturbation_factors"]):
            raise InputError(f"factors must be finite numbers > 0, got {factors!r}", path=path,
                             field=f"{section}.perturbation_factors")
    return out


def get_path(cfg: dict, keys: tuple[str, ...], default=None):
    for key in keys:
        if not isinstance(cfg, dict) or key not in cfg:
            return default
        cfg = cfg[key]
    return cfg


def set_path(cfg: dict, keys: tuple[str, ...], value) -> None:
    for key in keys[:-1]:
        if not isinstance(cfg.get(key), dict):
            cfg[key] = {}
        cfg = cfg[key]
    cfg[keys[-1]] = value


def apply_hyperparameters(base: dict, values: dict) -> dict:
    """A copy of the fit config ``base`` with the short-named ``values`` written at their places.

    >>> apply_hyperparameters({"model": {"init_args": {"lr": 1e-3}}}, {"lr": 2e-3, "gamma": 0.2})["model"]
    {'init_args': {'lr': 0.002, 'config': {'gamma': 0.2}}}
    """
    cfg = copy.deepcopy(base)
    for name, value in values.items():
        set_path(cfg, HYPERPARAMETERS[name].path, value)
    return cfg


#: the sections of a ``neurodyn fit`` config (LightningCLI's and neurodyn's own); tune reads seed_everything,
#: trainer, model and data, and best.yaml keeps the others for ``neurodyn fit``
FIT_SECTIONS = ("seed_everything", "trainer", "model", "data", "optimizer", "lr_scheduler", "ckpt_path",
                "checkpoint", "nlb_eval", "prediction", "run", "run_name")


def source_of(files: list, keys: tuple[str, ...]) -> str | None:
    """The last of the stacked config ``files`` that holds the nested key ``keys`` (else the last file)."""
    import yaml

    for file in reversed(files):
        try:
            data = yaml.safe_load(Path(file).read_text())
        except Exception:  # read and checked before; a file that changed since is simply skipped
            continue
        node, found = data, True
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                found = False
                break
            node = node[key]
        if found:
            return str(file)
    return str(files[-1]) if files else None


def find_key(cfg, name: str, under: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """The nested place of the key ``name`` in ``cfg`` (depth first), or None."""
    if not isinstance(cfg, dict):
        return None
    if name in cfg:
        return (*under, name)
    for key, value in cfg.items():
        found = find_key(value, name, (*under, str(key)))
        if found:
            return found
    return None


def check_fit_config(base: dict, files: list) -> None:
    """Keys of the fit config that no ``neurodyn fit`` accepts (a misspelt section or trainer option) are
    refused here: tune itself reads only a few of them, so a typo would otherwise pass unnoticed. So are the
    values of the trainer settings a trial keeps that Lightning divides by or misreads
    (:func:`~neurodyn.training.refusals.check_trainer_counts`), a ``seed_everything`` that ``neurodyn fit``
    refuses, and ``seed_everything: false``, which fit takes as "no seed" but tune cannot: every trial starts from
    one seed (they were each seeded 0, a seed no file named)."""
    import inspect

    import lightning.pytorch as pl

    for key in base:
        if key not in FIT_SECTIONS:
            raise InputError(f"unknown section of a fit config; expected one of {', '.join(FIT_SECTIONS)}",
                             path=source_of(files, (key,)), field=str(key))
    seed = base.get("seed_everything")
    # as neurodyn fit refuses them (the trials seeded 0 for 'abc' / 1.5, and -1 / 2**32 were Lightning tracebacks)
    if not (seed is None or isinstance(seed, bool) or isinstance(seed, int)):
        raise InputError(f"expected true or false or an integer, got {str(seed)!r}",
                         path=source_of(files, ("seed_everything",)), field="seed_everything")
    if isinstance(seed, int) and not isinstance(seed, bool) and not 0 <= seed <= 2**32 - 1:  # numpy's legacy seeds
        raise InputError(f"must be in 0 .. {2**32 - 1}, got {seed}", path=source_of(files, ("seed_everything",)),
                         field="seed_everything")
    if seed is False:  # fit leaves such a run unseeded; the trials were all seeded 0, which no file said
        raise InputError("false (no seed) does not suit a search: tune starts every trial from one seed, so that "
                         "trials differ by their hyperparameters alone and a search can be repeated; give a seed, or "
                         "true (one seed drawn for the whole search)", path=source_of(files, ("seed_everything",)),
                         field="seed_everything")
    trainer = base.get("trainer")
    if trainer is None:
        return
    if not isinstance(trainer, dict):
        raise InputError(f"expected a mapping, got {trainer!r}", path=source_of(files, ("trainer",)),
                         field="trainer")
    accepted = set(inspect.signature(pl.Trainer.__init__).parameters) - {"self"}
    for key in trainer:
        if key not in accepted:
            raise InputError("unknown option of the Lightning Trainer (misspelt?)",
                             path=source_of(files, ("trainer", key)), field=f"trainer.{key}")
    # the settings tune hands to each trial's Trainer that Lightning divides by or misreads (badin:
    # accumulate_grad_batches 0 failed every trial inside Ray, gradient_clip_val -1 turned every gradient around)
    from neurodyn.training.refusals import check_trainer_counts
    from neurodyn.training.tune.trial import TRAINER_KEYS

    try:
        check_trainer_counts({key: trainer[key] for key in TRAINER_KEYS if trainer.get(key) is not None})
    except InputError as err:
        raise InputError(err.message, path=source_of(files, tuple(err.field.split("."))), field=err.field) from None
    limit = trainer.get("limit_val_batches")
    if limit is not None and not isinstance(limit, bool) and limit == 0:  # every trial would fail in Ray
        raise InputError("is 0, but tune compares trials on the select split's valid/loss after every epoch",
                         path=source_of(files, ("trainer", "limit_val_batches")), field="trainer.limit_val_batches")


def check_model(base: dict, source: str) -> None:
    model = base.get("model")
    class_path = model.get("class_path") if isinstance(model, dict) else None
    if class_path is not None and class_path not in _MODULES:
        raise InputError(f"tune searches LangevinFlowModule hyperparameters, got {class_path!r}",
                         path=source, field="model.class_path")


def endpoints(spec: tuple) -> list:
    if spec[0] == "fixed":
        return [spec[1]]
    if spec[0] == "choice":
        return list(spec[1])
    return [spec[1], spec[2]]


def _blame_searched_value(cfg_base: dict, space: dict, search_path: Path) -> InputError | None:
    """The model config refused a key the search does not set (``n_heads``: the decoder width ``2 * latent_dim +
    hidden_size`` must divide by it); if the fit config's own values pass, a searched value is the cause:
    raise an InputError naming the search file and the first searched value (choice, range end) that the
    model refuses with the config's other values. Returns the fit config's own refusal when the fit config
    itself is at fault (None for a TypeError)."""
    from neurodyn.models.langevinflow import LangevinFlowConfig

    try:
        LangevinFlowConfig(**cfg_base)
    except InputError as err:
        return err  # the config's own values fail: reported against the config file
    except TypeError:
        return None
    for name, spec in space.items():
        if HYPERPARAMETERS[name].path[:3] != _CFG:
            continue
        for value in endpoints(spec):
            try:
                LangevinFlowConfig(**{**cfg_base, HYPERPARAMETERS[name].path[3]: value})
            except InputError as err:
                raise InputError(f"value {value!r}: {err.message}", path=search_path, field=f"space.{name}") from None
    raise InputError("the searched values together make a model config that LangevinFlow refuses", path=search_path,
                     field="space")


def _config_error(err: InputError, cfg_base: dict, files: list) -> InputError:
    """The model config's refusal ``err`` of the fit config's own values, at its place
    (``model.init_args.config.<field>``) and in the last of the stacked ``files`` that holds it. A refused
    combination (``err.involves``: ``n_heads`` must divide ``2*latent_dim+hidden_size``) whose values the files
    set in different places (or a default) names the value set last -- the later file's ``hidden_size``, not the
    earlier file's ``n_heads`` -- and where each value came from, as ``neurodyn fit`` does
    (:func:`neurodyn.training.parser_errors.combination`)."""
    import dataclasses

    from neurodyn.models.langevinflow import LangevinFlowConfig

    keys = _CFG + ((err.field,) if err.field else ())
    if err.involves and err.field and files:
        defaults = {f.name: f.default for f in dataclasses.fields(LangevinFlowConfig)
                    if f.default is not dataclasses.MISSING}
        values = {".".join((*_CFG, name)): value for name, value in {**defaults, **cfg_base}.items()}
        combined = combination(".".join(keys), err, values, [arg for f in files for arg in ("--config", str(f))])
        if combined is not None:
            return combined
    return InputError(err.message, path=source_of(files, keys) if files else None, field=".".join(keys))


def check_values(base: dict, space: dict, search_path: Path, config_files: list | None = None) -> None:
    """Every value a search can produce must make a valid model: endpoints and choices are tried.

    The fit config's own model config is checked first, so that its errors name the config file
    (the last of ``config_files`` holding the key, :func:`_config_error`) rather than the search file.
    """
    from neurodyn.models.langevinflow import LangevinFlowConfig

    cfg_base = dict(get_path(base, _CFG, {}) or {})
    files = list(config_files or [])
    probe = {**cfg_base, **{name: endpoints(spec)[0] for name, spec in space.items()
                            if HYPERPARAMETERS[name].path[:3] == _CFG}}
    try:
        LangevinFlowConfig(**probe)
    except TypeError as err:  # an unknown key in the fit config itself
        bad = next((k for k in cfg_base if k not in LangevinFlowConfig.__dataclass_fields__), None)
        field = ".".join(_CFG + ((bad,) if bad else ()))
        raise InputError(f"unknown option of LangevinFlowConfig ({err})" if bad else str(err),
                         path=source_of(files, _CFG + ((bad,) if bad else ())) if files else None,
                         field=field) from None
    except InputError as err:
        if err.field not in space:  # a searched value is reported below, against the search file
            own = _blame_searched_value(cfg_base, space, search_path)  # a sampled value the model refuses
            # the config's own values at fault: their refusal (its numbers are the config's, not a sample's)
            raise _config_error(own if own is not None and own.field not in space else err, cfg_base,
                                files) from None
    for name, spec in space.items():
        for value in endpoints(spec):
            if name == "lr" and not (math.isfinite(value) and value > 0):
                raise InputError(f"must be a finite number > 0, got {value!r}", path=search_path,
                                 field=f"space.{name}")
            if name == "weight_decay" and not (math.isfinite(value) and value >= 0):
                raise InputError(f"must be a finite number >= 0, got {value!r}", path=search_path,
                                 field=f"space.{name}")
            if HYPERPARAMETERS[name].path[:3] == _CFG:
                try:
                    LangevinFlowConfig(**{**probe, name: value})
                except InputError as err:
                    raise InputError(f"value {value!r}: {err.message}", path=search_path,
                                     field=f"space.{name}") from None
                except TypeError as err:  # an unknown key in the fit config itself
                    raise InputError(str(err), field="model.init_args.config") from None
