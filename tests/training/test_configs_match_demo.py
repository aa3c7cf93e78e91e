"""The Lorenz YAML config, the demo and the benchmark use the same LangevinFlow settings."""

from pathlib import Path

import yaml

from neurodyn.demo import LORENZ_MODEL, LORENZ_OPT

ROOT = Path(__file__).resolve().parents[2]


def test_lorenz_yaml_matches_demo_settings():
    cfg = yaml.safe_load((ROOT / "configs/langevinflow/lorenz.yaml").read_text())["model"]["init_args"]
    for key, value in LORENZ_MODEL.items():
        assert cfg["config"][key] == value, key
    for key, value in LORENZ_OPT.items():
        assert (float(cfg[key]) if isinstance(value, float) else cfg[key]) == value, key
