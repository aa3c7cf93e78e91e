"""Figures in the README's prose that no benchmark writes: each is computed here from where it comes from.

The results tables are checked by ``test_readme_results.py``; this file covers the rest: the NLB download
table (sizes from the dataset registry, times = size / bandwidth) and the Lorenz ensemble remark.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
PROSE = " ".join(README.split())  # line breaks folded, for sentences


def _mb(n_bytes: int, decimals: int) -> str:
    return f"{n_bytes / 1e6:,.{decimals}f} MB"


def test_download_table_is_the_registry():
    from neurodyn.data.nlb import DATASETS

    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `(\w+)` \| DANDI:.*\|$", README, flags=re.M)}
    assert sorted(rows) == sorted(DATASETS), "the README's download table lists other datasets than the registry"
    for name, ds in DATASETS.items():
        total = ds.train_file.size + ds.test_file.size
        expected = (f"| `{name}` | DANDI:{ds.dandiset_id}/{ds.version} | {_mb(ds.train_file.size, 1)} + "
                    f"{_mb(ds.test_file.size, 2)} | {total / 10e6:.0f} s | {total / 100e6:.1f} s |")
        assert rows[name] == expected
    all_bytes = sum(ds.train_file.size + ds.test_file.size for ds in DATASETS.values())
    assert f"{all_bytes / 1e9:.2f} GB in all" in README


def test_lorenz_ensemble_remark_holds_on_every_seed():
    """The README says the Lorenz ensemble is above its member 0 on every seed by less than the seed-to-seed
    spread; the numbers are in ``benchmarks/results/lorenz.json``, not typed into the prose."""
    figures = json.loads((ROOT / "benchmarks" / "results" / "lorenz.json").read_text())["figures"]
    ensemble, single = figures["langevinflow_ensemble"], figures["langevinflow"]
    gains = [e - s for e, s in zip(ensemble["values"], single["values"])]
    assert "on Lorenz it is above its member 0 on every seed, by less than the seed-to-seed spread" in PROSE
    assert all(g > 0 for g in gains) and max(gains) < min(ensemble["sd"], single["sd"]), gains


def test_the_rule_for_run_folders_written_before_run_json_names_every_record_it_accepts(tmp_path):
    """The README's rule for a run written before run.json named metrics.csv and hparams.yaml, not
    config.resume-<n>.yaml, which checkpoint_index.is_run_folder accepts too; each record named there makes such a
    folder a run folder, and the sentence has one aside, not two in a row."""
    from neurodyn.training.checkpoint_index import is_run_folder

    clause = PROSE.split("a run written before `run.json` is one where", 1)[1].split(";", 1)[0]
    named = re.findall(r"`([^`]+)`", clause)
    assert {"metrics.csv", "hparams.yaml", "config.resume-<n>.yaml"} <= set(named), clause
    for name in ("metrics.csv", "hparams.yaml", "config.resume-1.yaml"):
        run = tmp_path / name
        (run / "ck").mkdir(parents=True)
        (run / "config.yaml").write_text(f"checkpoint:\n  dirpath: {run / 'ck'}\n")
        assert not is_run_folder(run)
        (run / name).write_text("")
        assert is_run_folder(run), name
    sentence = PROSE.split("`predict` / `validate` / `test --config DIR/config.yaml` take", 1)[1].split(". ", 1)[0]
    assert ") (" not in sentence, sentence
