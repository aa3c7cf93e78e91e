"""DDP on the CPU (gloo, 2 processes): the validation and test metrics of a checkpoint, and the validation of a fit,
equal a single-process run's; under ddp_spawn / ddp_fork bad input found in the processes is the command's one
line, predict writes every trial once, and more processes than cores is said (the tests after the metrics tests).

The data have 5 validation trials, a number the 2 processes do not divide. Lightning's DistributedSampler dealt the
trials out and padded the second process's share with the first trial, so valid/* counted it twice (a 3-epoch
checkpoint of these data: valid/loss 0.74953 in 2 processes, 0.75241 in one) and the batches were made of other
trials than in one process (a sampled pass draws its noise per batch: co-bps -0.519 against -0.580). Each process
now evaluates whole batches of the single-process loader (``BatchShares``; a process with fewer batches repeats the
last one, which counts once), and the epoch's values are made from every process's batches, each once, summed in
the loader's order.

Tolerance, derived: each batch is then the same float computation as in one process (the same trials in the same
shapes, the same seeded draws; one thread in every process: ``ddp_env``, ``OMP_NUM_THREADS=1``), and the epoch's
sums and co-bps / fp-bps are the same float operations in the same order, so the values are equal bit for bit
(tolerance 0).
"""

from __future__ import annotations

import contextlib
import csv
import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from subprocess_env import DIST_VARS, clean_env, without_cores_note

from neurodyn.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from neurodyn.data.prepare import prepare
    from neurodyn.data.synthetic.nlb_nwb import write_nlb_pair

    tmp = tmp_path_factory.mktemp("ddp")
    write_nlb_pair(tmp / "nwb", "mc_maze", n_train_trials=20, n_test_trials=4, n_heldin=6, n_heldout=3, seed=1)
    data = tmp / "tiny_20_val.h5"
    prepare("mc_maze", tmp / "nwb", bin_ms=20, phase="val", out=data, log=None)
    args = ["--data", "NLBDataModule", "--data.path", str(data), "--data.batch_size", "4",
            "--model", "LangevinFlowModule", "--model.config.hidden_size", "8", "--model.config.ff_dim", "16",
            "--model.config.eval_mode", "mean", "--trainer.accelerator", "cpu", "--trainer.max_epochs", "2",
            "--trainer.enable_model_summary", "false", "--trainer.default_root_dir", str(tmp), "--run-name", "run"]
    assert main(["fit", *args]) == 0
    return tmp, tmp / "run", data


def _metrics(folder: Path, prefix: str = "valid/") -> dict[str, float]:
    (path,) = folder.rglob("metrics.csv")
    rows = list(csv.DictReader(path.open()))
    return {k: float(v) for row in rows for k, v in row.items() if k.startswith(prefix) and v != ""}


@contextlib.contextmanager
def _one_thread():
    """torch's intra-op threads set to 1 in this process (and in those it forks), as in the DDP processes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def test_ddp_validation_metrics_equal_single_process(trained):
    """``--trainer.strategy ddp`` (the command run again for the second process): every valid/* metric of a
    checkpoint equals one process's, bit for bit (module docstring). The second process's share was padded with
    the first trial before: valid/loss differed by 0.4 %."""
    tmp, run, data = trained
    common = ["validate", "--run", str(run), "--ckpt_path", "last", "--trainer.enable_model_summary", "false",
              "--trainer.logger", "CSVLogger"]
    with _one_thread():
        assert main([*common, "--trainer.logger.save_dir", str(tmp / "single")]) == 0
    single = _metrics(tmp / "single")

    script = tmp / "run_neurodyn.py"  # Lightning's DDP launcher starts rank 1 by re-running this script
    script.write_text("import sys\nfrom neurodyn.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    env = {**clean_env(), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, str(script), *common, "--trainer.logger.save_dir", str(tmp / "ddp"),
                           "--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Seed set to" not in proc.stdout + proc.stderr  # the second process printed '[rank: 1] Seed set to 0'
    ddp = _metrics(tmp / "ddp")
    assert {"valid/co_bps", "valid/fp_bps", "valid/loss"} <= set(single)
    assert ddp == single, {k: (ddp.get(k), v) for k, v in single.items() if ddp.get(k) != v}


def test_hmmglm_refuses_ddp(tmp_path, capsys):
    code = main(["fit", "--model", "HMMGLMModule", "--data", "SwitchingGLMDataModule", "--data.n_sequences", "4",
                 "--data.n_bins", "50", "--data.n_train", "2", "--trainer.strategy", "ddp", "--trainer.devices", "2",
                 "--trainer.accelerator", "cpu", "--trainer.default_root_dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "trainer.strategy: HMMGLMModule trains in one process" in err[0]
    assert not any(tmp_path.iterdir())


# -- ddp_spawn / ddp_fork: the processes Lightning starts keep the command's contract ---------------------------
# Bad input that only the run finds (in the processes Lightning starts) was torch's ProcessRaisedException: the
# process's traceback, exit code 1. Run in this process (no interpreter to start), 2 processes on the CPU (gloo).

@pytest.fixture
def ddp_env(monkeypatch):
    """A clean environment for a run that starts its own processes, Lightning's loggers with the console handler
    they have on the command line, and a machine with cores enough (no note on processes and cores)."""
    import logging

    from neurodyn.training import processes

    for key in DIST_VARS:
        monkeypatch.delenv(key, raising=False)  # the launcher sets MASTER_PORT: gone again after the test
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("NEURODYN_DEBUG", raising=False)
    for name in ("lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        monkeypatch.setattr(logger, "handlers", [logging.StreamHandler()])
        monkeypatch.setattr(logger, "propagate", False)
    monkeypatch.setattr(processes, "cpu_cores", lambda: 2)
    with _one_thread():  # the processes Lightning forks keep it
        yield


def _bad_eval_target(data: Path, out: Path) -> Path:
    """A copy of a prepared file whose evaluation targets name a trial it does not have: read by the NLB metrics
    callback only, in the run."""
    import shutil

    import h5py

    shutil.copy(data, out)
    with h5py.File(out, "r+") as f:
        (group,) = f["eval_target"]
        rows = f[f"eval_target/{group}/eval_cond_idx"]
        rows[0] = np.array([0, 99])
    return out


def _fit_args(tmp: Path, data: Path) -> list[str]:
    return ["fit", "--data", "NLBDataModule", "--data.path", str(data), "--data.batch_size", "4",
            "--model", "LangevinFlowModule", "--model.config.hidden_size", "8", "--model.config.ff_dim", "16",
            "--model.config.eval_mode", "mean", "--trainer.accelerator", "cpu", "--trainer.max_epochs", "1",
            "--trainer.enable_model_summary", "false", "--trainer.default_root_dir", str(tmp / "runs")]


DDP2 = ["--trainer.devices", "2", "--trainer.accelerator", "cpu"]
#: ddp_fork needs the fork start method (Linux, macOS; not Windows)
needs_fork = pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(),
                                reason="ddp_fork needs the fork start method")
MONITOR = ("neurodyn fit: error: checkpoint.monitor: 'valid/nope' is not a metric this run logs at validation (it "
           "logs valid/co_bps, valid/fp_bps, valid/kl, valid/kl_transition, valid/kl_v0, valid/kl_weight, "
           "valid/kl_z0, valid/loss, valid/nll, valid/total)")
LIMIT = ("neurodyn validate: error: trainer.limit_val_batches: You requested to check 0.001 of the `val_dataloader` "
         "but 0.001 * 1 < 1.")


def test_bad_input_in_a_spawned_process_is_one_line(trained, tmp_path, ddp_env, capfd):
    """ddp_spawn: a monitor no validation logs is found by the sanity check, in the spawned processes. This fit
    did not start at all before (the CLI, pickled into the processes, held the run folder's lock: 'cannot
    pickle generator', a traceback)."""
    tmp, _, data = trained
    capfd.readouterr()
    code = main([*_fit_args(tmp_path, data), "--checkpoint.monitor", "valid/nope", "--trainer.strategy", "ddp_spawn",
                 *DDP2])
    out, err = capfd.readouterr()
    assert code == 2 and out == "" and err.splitlines() == [MONITOR], (code, out, err[-3000:])
    assert not (tmp_path / "runs").exists()


@needs_fork
@pytest.mark.parametrize("case", ["fit-monitor", "validate-limit", "fit-eval-target"])
def test_bad_input_in_a_forked_process_is_one_line(case, trained, tmp_path, ddp_env, capfd):
    tmp, run, data = trained
    bad = _bad_eval_target(data, tmp_path / "bad_target.h5")
    argv, line, quiet = {
        # found at the end of the sanity check: nothing printed before it
        "fit-monitor": ([*_fit_args(tmp_path, data), "--checkpoint.monitor", "valid/nope"], MONITOR, True),
        # found when the processes set up their validation data (each its half of the trials)
        "validate-limit": (["validate", "--run", str(run), "--trainer.limit_val_batches", "0.001"], LIMIT, True),
        # a data file read by the run only (the NLB metrics of the first epoch): after what the run printed, as
        # in one process, naming the file (it was 'mc_maze/eval_cond_idx: ...' there too)
        "fit-eval-target": ([*_fit_args(tmp_path, bad), "--nlb_eval.every_n_epochs", "1"],
                            f"neurodyn fit: error: {bad}: mc_maze_20/eval_cond_idx: trial index out of range 0..4",
                            False),
    }[case]
    capfd.readouterr()
    code = main([*argv, "--trainer.strategy", "ddp_fork", *DDP2])
    out, err = capfd.readouterr()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith(line), (code, err[-3000:])
    assert (out == "") == quiet, out
    assert not (tmp_path / "runs").exists()


@needs_fork
@pytest.mark.parametrize("command, options", [
    # 3 batches of 2, 2 and 1 trials: the second process evaluates batch 2 and a repeat of batch 3 (counted once);
    # a sampled pass draws its noise per batch
    ("validate", ["--model.config.eval_mode", "sample", "--data.batch_size", "2"]),
    ("test", []),  # batches of 4 and 1 trials, one per process (the first trial was added to the second's share)
])
def test_evaluation_in_processes_equals_one_process(command, options, trained, tmp_path, ddp_env):
    """ddp_fork: valid/* of ``validate``, test/* of ``test`` equal one process's, bit for bit (module docstring)."""
    _, run, _ = trained
    common = [command, "--run", str(run), "--ckpt_path", "last", *options, "--trainer.logger", "CSVLogger"]
    assert main([*common, "--trainer.logger.save_dir", str(tmp_path / "one")]) == 0
    assert main([*common, "--trainer.logger.save_dir", str(tmp_path / "two"), "--trainer.strategy", "ddp_fork",
                 *DDP2]) == 0
    prefix = "valid/" if command == "validate" else "test/"
    one, two = _metrics(tmp_path / "one", prefix), _metrics(tmp_path / "two", prefix)
    assert {f"{prefix}loss", f"{prefix}co_bps", f"{prefix}kl"} <= set(one)
    assert two == one, {k: (two.get(k), v) for k, v in one.items() if two.get(k) != v}


@needs_fork
def test_fit_in_processes_validates_as_one_process(trained, tmp_path, ddp_env, capfd):
    """The validation of a ddp_fork fit -- what its checkpoint monitor and learning-rate schedule read -- equals
    one process's validation of the checkpoint the fit saved (batch size 2: the second process repeats the last
    of 3 validation batches)."""
    _, _, data = trained
    assert main([*_fit_args(tmp_path, data), "--data.batch_size", "2", "--run-name", "two", "--trainer.strategy",
                 "ddp_fork", *DDP2]) == 0
    run = tmp_path / "runs" / "two"
    rows = [row for row in csv.DictReader((run / "metrics.csv").open()) if row.get("valid/loss")]
    fitted = {k: float(v) for k, v in rows[-1].items() if k.startswith("valid/") and v != ""}
    # one process (the run's config.yaml records the fit's strategy and devices)
    assert main(["validate", "--run", str(run), "--ckpt_path", "last", "--trainer.strategy", "auto",
                 "--trainer.devices", "1", "--trainer.logger", "CSVLogger",
                 "--trainer.logger.save_dir", str(tmp_path / "one")]) == 0
    out = capfd.readouterr().out
    assert "MEMBER: 2/2" in out and out.count("MEMBER:") == 2, out  # the fit ran in 2 processes, validate in one
    one = _metrics(tmp_path / "one")
    assert {"valid/loss", "valid/co_bps"} <= set(one)
    assert fitted == one, {k: (fitted.get(k), v) for k, v in one.items() if fitted.get(k) != v}


#: a `neurodyn` command whose LangevinFlowModule appends (epoch, trials, training loss) of each batch to
#: $RECORDS/<rank>.txt (forked processes keep the patched class)
RECORDING = """import os, sys
from neurodyn.training.module import LangevinFlowModule


def record(self, outputs, batch, batch_idx):
    with open(os.path.join(os.environ["RECORDS"], f"{self.global_rank}.txt"), "a") as file:
        file.write(f"{self.current_epoch} {len(batch['heldin'])} {float(outputs['loss'])!r}\\n")


LangevinFlowModule.on_train_batch_end = record
from neurodyn.cli import main
sys.exit(main(sys.argv[1:]))
"""


@needs_fork
def test_fit_in_processes_logs_train_metrics_of_every_process(trained, tmp_path):
    """train/* of a ddp_fork fit: each epoch's value in metrics.csv is the mean over both processes' batches (it was
    the first process's own, and Lightning warned 'It is recommended to use `self.log(..., sync_dist=True)`' once
    per train/* metric, 10 warnings on stderr). A command of its own: pytest records warnings instead of printing
    them, also in the processes a test forks.

    Tolerance, derived: Lightning sums n_b * loss_b in float32 in each process (k_r products and sums, each rounded
    by at most eps32 / 2 of the running sum of n_b |loss_b|), adds the two sums (one rounding), divides by the count
    (one rounding): |logged - exact| <= (k + 3) eps32 sum_b n_b |loss_b| / sum_b n_b over all k batches."""
    _, _, data = trained
    records = tmp_path / "records"
    records.mkdir()
    script = tmp_path / "recording_neurodyn.py"
    script.write_text(RECORDING)
    env = {**clean_env(), "OMP_NUM_THREADS": "1", "RECORDS": str(records)}
    proc = subprocess.run([sys.executable, str(script), *_fit_args(tmp_path, data), "--trainer.max_epochs", "2",
                           "--data.batch_size", "3", "--run-name", "two", "--trainer.strategy", "ddp_fork", *DDP2],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "sync_dist" not in proc.stderr and "Warning" not in proc.stderr, proc.stderr
    batches = {rank: np.array([line.split() for line in (records / f"{rank}.txt").read_text().splitlines()],
                              dtype=np.float64) for rank in (0, 1)}  # rows: epoch, trials, loss
    rows = [row for row in csv.DictReader((tmp_path / "runs" / "two" / "metrics.csv").open()) if row["train/loss"]]
    assert [int(row["epoch"]) for row in rows] == [0, 1] and all(row["train/lr"] for row in rows)
    for row in rows:
        epoch = int(row["epoch"])
        mine = {rank: b[b[:, 0] == epoch] for rank, b in batches.items()}
        both = np.concatenate(list(mine.values()))
        n, loss = both[:, 1], both[:, 2]
        exact = float(np.sum(n * loss) / np.sum(n))
        bound = (len(both) + 3) * np.finfo(np.float32).eps * float(np.sum(n * np.abs(loss)) / np.sum(n))
        assert abs(float(row["train/loss"]) - exact) <= bound, (epoch, row["train/loss"], exact, bound)
        first = float(np.sum(mine[0][:, 1] * mine[0][:, 2]) / np.sum(mine[0][:, 1]))
        assert abs(first - exact) > 10 * bound  # the first process's own mean, logged before, is told apart


@needs_fork
def test_debug_shows_the_process_traceback(trained, ddp_env, capfd):
    _, run, _ = trained
    capfd.readouterr()
    code = main(["--debug", "validate", "--run", str(run), "--trainer.limit_val_batches", "0.001",
                 "--trainer.strategy", "ddp_fork", *DDP2])
    err = capfd.readouterr().err
    assert code == 2 and err.splitlines()[-1].startswith(LIMIT), err[-3000:]
    assert "terminated with the following error" in err and "in _parse_num_batches" in err  # the process's own
    assert err.count("Traceback (most recent call last)") >= 2


@pytest.mark.parametrize("strategy", [pytest.param("ddp_fork", marks=needs_fork), "ddp_spawn"])
def test_predict_in_processes_writes_every_trial_once(trained, tmp_path, ddp_env, capfd, strategy):
    """Each process wrote a file of its own share of the trials (the second refused, the file existed: exit 2 and
    half the trials left at the path). Each process predicts whole batches of the single-process loader (2 trials:
    the second process repeats the last of the 3 evaluation batches), each the same computation as in one process,
    also a sampled pass (its noise drawn per batch: in batches of other trials the rates differed by up to 37 %),
    so the files are equal. ddp_spawn: the first process writes the file under the lock the command's process
    holds (a fresh interpreter, it did not know that lock as held and was refused: 'another process is writing
    this file', exit 2, every time)."""
    import h5py

    _, run, _ = trained
    one, two = tmp_path / "one.h5", tmp_path / "two.h5"
    common = ["predict", "--run", str(run), "--data.batch_size", "2", "--model.config.eval_mode", "sample"]
    assert main([*common, "--out", str(one)]) == 0
    capfd.readouterr()
    code = main([*common, "--out", str(two), "--trainer.strategy", strategy, *DDP2])
    assert code == 0 and capfd.readouterr().err == "", code
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.h5", "two.h5"]  # no lock file left
    with h5py.File(one) as a, h5py.File(two) as b:
        keys = []
        a.visititems(lambda name, obj: keys.append(name) if isinstance(obj, h5py.Dataset) else None)
        assert keys and all(np.array_equal(a[k][()], b[k][()]) for k in keys), keys
        assert set(a.attrs) == set(b.attrs)


@needs_fork
def test_more_processes_than_cores_is_said(trained, ddp_env, monkeypatch, capfd):
    """``--trainer.devices N`` on the CPU started N processes without a word however few the cores. It is said on
    stderr before they start (not refused: the process count splits the data, and tests run more processes than
    a machine has cores); the run is as asked."""
    from neurodyn.training import processes

    _, run, _ = trained
    monkeypatch.setattr(processes, "cpu_cores", lambda: 1)
    capfd.readouterr()
    assert main(["validate", "--run", str(run), "--trainer.strategy", "ddp_fork", *DDP2]) == 0
    out, err = capfd.readouterr()
    note = ("note: trainer.devices: 2 processes on 1 CPU core (accelerator cpu) share it, each with its own copy of "
            "the data and the model; --trainer.devices 1 gives each process a core")
    assert err.splitlines().count(note) == 1 and err.startswith(note), err
    assert "MEMBER: 2/2" in out  # two processes ran
    monkeypatch.setattr(processes, "cpu_cores", lambda: 2)
    assert main(["validate", "--run", str(run), "--trainer.strategy", "ddp_fork", *DDP2]) == 0
    assert "note: trainer.devices" not in capfd.readouterr().err


# -- ddp: the command run again for each other process ---------------------------------------------------------
#: the `neurodyn` command; with $SECOND_PROCESS_ARGS, the processes `--trainer.strategy ddp` starts (LOCAL_RANK 1,
#: ...) are given those arguments too; the command's process waits 1 s (not 30) for one that left to report
ONE_COMMAND = """import os, shlex, sys
from neurodyn.training import processes

processes.WATCH_S = processes.GRACE_S = 1.0
from neurodyn.cli import main

argv = sys.argv[1:]
if os.environ.get("LOCAL_RANK", "0") != "0":
    argv += shlex.split(os.environ.get("SECOND_PROCESS_ARGS", ""))
sys.exit(main(argv))
"""


def _ddp_command(tmp: Path, argv: list[str], second: str = "") -> subprocess.CompletedProcess:
    script = tmp / "one_command.py"
    script.write_text(ONE_COMMAND)
    env = {**clean_env(), "OMP_NUM_THREADS": "1", "SECOND_PROCESS_ARGS": second}
    return subprocess.run([sys.executable, str(script), *argv, "--trainer.strategy", "ddp", *DDP2],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)


def test_ddp_bad_input_is_one_line(trained, tmp_path):
    """`--trainer.strategy ddp`: a limit_val_batches below one batch, found by both processes, was printed by each
    (2 lines; 3 with 3 devices). The started process records it and prints nothing; the command prints it once."""
    _, run, _ = trained
    proc = _ddp_command(tmp_path, ["validate", "--run", str(run), "--trainer.limit_val_batches", "0.001"])
    assert proc.returncode == 2 and without_cores_note(proc.stderr) == [
        LIMIT + " Please increase the `limit_val_batches` argument. Try at least `limit_val_batches=1.0`"], \
        (proc.returncode, proc.stderr[-3000:])


def test_ddp_bad_input_of_the_other_process_is_one_line(trained, tmp_path):
    """Bad input only the started process finds (here: its own arguments name a missing data file) was its line,
    then Lightning killed the command (SIGKILL: exit 137) while it waited for that process. The command now prints
    that process's line, once, and exits with 2."""
    _, run, _ = trained
    missing = tmp_path / "missing.h5"
    proc = _ddp_command(tmp_path, ["validate", "--run", str(run)], second=f"--data.path {missing}")
    line = f"neurodyn validate: error: {missing}: data.init_args.path: file not found"
    assert proc.returncode == 2 and without_cores_note(proc.stderr) == [line], (proc.returncode, proc.stderr[-3000:])


@pytest.mark.parametrize("command", ["fit", "predict"])
def test_ddp_bad_input_of_the_other_process_leaves_nothing(command, trained, tmp_path):
    """When only the started process found bad input, the command's process is ended with os._exit once it has
    printed the line (it waits for the process that left), and its clean-up did not run: a new fit's run folder
    stayed with its lock (`<root>/run/.run.lock`), a predict's lock file beside the output. Nothing stays now."""
    _, run, data = trained
    out = tmp_path / "out"
    missing = tmp_path / "missing.h5"
    if command == "fit":
        argv = ["fit", "--config", str(run / "config.yaml"), "--trainer.default_root_dir", str(out), "--run-name",
                "new", "--trainer.strategy", "ddp"]
    else:
        out.mkdir()
        argv = ["predict", "--run", str(run), "--out", str(out / "p.h5")]
    proc = _ddp_command(tmp_path, argv, second=f"--data.path {missing}")
    line = f"neurodyn {command}: error: {missing}: data.init_args.path: file not found"
    assert proc.returncode == 2 and without_cores_note(proc.stderr) == [line], (proc.returncode, proc.stderr[-3000:])
    left = sorted(str(p.relative_to(tmp_path)) for p in out.rglob("*")) if out.exists() else []
    assert left == [] and (command == "predict" or not out.exists()), left


def test_ddp_predict_writes_the_file(trained, tmp_path):
    """`predict --trainer.strategy ddp`: the started process (the command run again) took the prediction file's lock,
    which the command held, refused ('another process is writing this file') and Lightning killed the command (exit
    137, no file). It writes the file one process writes."""
    import h5py

    _, run, _ = trained
    one, two = tmp_path / "one.h5", tmp_path / "two.h5"
    common = ["predict", "--run", str(run)]
    assert main([*common, "--out", str(one)]) == 0
    proc = _ddp_command(tmp_path, [*common, "--out", str(two)])
    assert proc.returncode == 0 and without_cores_note(proc.stderr) == [], (proc.returncode, proc.stderr[-3000:])
    with h5py.File(one) as a, h5py.File(two) as b:
        keys = []
        a.visititems(lambda name, obj: keys.append(name) if isinstance(obj, h5py.Dataset) else None)
        assert keys and all(np.array_equal(a[k][()], b[k][()]) for k in keys), keys
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.h5", "one_command.py", "two.h5"]  # no lock left


#: the `neurodyn` command under `--trainer.strategy ddp`, each process writing to $REPORT_DIR whether its process
#: group is still initialised when the command returns; a started process waits until the command's run has ended
#: (the command's process marks it before waiting for the processes it started), then 1 s, and exits with
#: $CHILD_EXIT
AFTER_RUN = """import os, sys, time
from pathlib import Path

import torch.distributed as dist

from neurodyn.training import processes
from neurodyn.cli import main

report = Path(os.environ["REPORT_DIR"])
wait = processes.ScriptLauncher._wait_for_processes


def marked_wait(self, *args):
    (report / "run-ended").touch()
    wait(self, *args)


processes.ScriptLauncher._wait_for_processes = marked_wait
rank = os.environ.get("LOCAL_RANK", "0")
code = main(sys.argv[1:])
(report / f"initialised-{rank}").write_text(str(dist.is_initialized()))
if rank != "0":
    deadline = time.monotonic() + 120  # never an orphan that waits on, whatever failed
    while not (report / "run-ended").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    code = int(os.environ.get("CHILD_EXIT", "0")) or code
sys.exit(code)
"""


def _after_run(tmp: Path, argv: list[str], child_exit: int = 0) -> tuple[int, str, Path]:
    """The command under ``--trainer.strategy ddp`` with :data:`AFTER_RUN`: its exit code, stderr, the report folder.
    Output goes to files, not pipes: a pipe's reader waits for every process holding it, so whether the command
    waited for the processes it started would not show."""
    script, report = tmp / "after_run.py", tmp / "report"
    script.write_text(AFTER_RUN)
    report.mkdir()
    env = {**clean_env(), "OMP_NUM_THREADS": "1", "REPORT_DIR": str(report), "CHILD_EXIT": str(child_exit)}
    with open(tmp / "stdout", "w") as out, open(tmp / "stderr", "w") as err:
        code = subprocess.run([sys.executable, str(script), *argv, "--trainer.strategy", "ddp", *DDP2],
                              stdout=out, stderr=err, env=env, cwd=ROOT, timeout=600).returncode
    return code, (tmp / "stderr").read_text(), report


def test_ddp_processes_end_their_process_group(trained, tmp_path):
    """Lightning left each process's gloo process group (its worker threads) to the interpreter's exit, and a
    process ended now and then with C++'s 'terminate called without an active exception' on stderr (a plain-ddp
    predict in a fresh-clone test run). Each process now ends its group when its run ends."""
    _, run, _ = trained
    code, stderr, report = _after_run(tmp_path, ["predict", "--run", str(run), "--out", str(tmp_path / "p.h5")])
    assert code == 0 and without_cores_note(stderr) == [], (code, stderr[-3000:])
    assert [(report / f"initialised-{r}").read_text() for r in "01"] == ["False", "False"]


def test_ddp_process_that_fails_after_the_run_fails_the_command(trained, tmp_path):
    """A started process that ends with an error once the run has finished went unseen: the command did not wait for
    the processes it started and returned 0 (it ended after them only because torch's store, which the command's
    process serves, waited for them at its exit). The command now waits for them, and such an end fails it: one line,
    exit code 1."""
    _, run, _ = trained
    code, stderr, _ = _after_run(tmp_path, ["validate", "--run", str(run)], child_exit=3)
    assert code == 1 and without_cores_note(stderr) == [
        "neurodyn validate: error: process 1 ended with exit code 3 after the run had finished (its results are "
        "written)"], (code, stderr[-3000:])


# -- a signal while ddp_spawn / ddp_fork processes start, and a signal to the command's process alone ---------------

#: the `neurodyn` command; as soon as torch has started the run's processes (each still importing its modules under
#: ddp_spawn) the signal $SIGNAL goes to the command's process group ("group": a terminal's Ctrl-C) or to the
#: command's process alone ("command": `kill`, a scheduler's)
START_SIGNAL = """import os, signal, sys

import torch.multiprocessing

from neurodyn.cli import main

start = torch.multiprocessing.start_processes


def start_processes(*args, **kwargs):
    context = start(*args, **kwargs)
    target, signum = os.environ["SIGNAL"].split()
    os.killpg(0, int(signum)) if target == "group" else os.kill(os.getpid(), int(signum))
    return context


torch.multiprocessing.start_processes = start_processes
if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
"""


def _signalled(tmp: Path, argv: list[str], target: str, signum: int) -> tuple[int, list[str]]:
    """Run the command of ``argv`` in a session of its own (a group signal reaches nothing else) with the signal
    sent as its processes start; its exit code and stderr's lines."""
    script = tmp / "start_signal.py"
    script.write_text(START_SIGNAL)
    env = clean_env(OMP_NUM_THREADS="1", SIGNAL=f"{target} {int(signum)}")
    done = subprocess.run([sys.executable, str(script), *argv, *DDP2], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300, start_new_session=True)
    return done.returncode, without_cores_note(done.stderr)


@pytest.mark.xdist_group("ddp_signals")
@pytest.mark.parametrize(("strategy", "target", "signum"), [
    ("ddp_spawn", "group", signal.SIGINT), ("ddp_spawn", "command", signal.SIGTERM),
    pytest.param("ddp_fork", "group", signal.SIGINT, marks=needs_fork),
    pytest.param("ddp_fork", "command", signal.SIGTERM, marks=needs_fork)])
def test_a_signal_while_the_processes_start_is_one_line_and_leaves_nothing(strategy, target, signum, trained,
                                                                            tmp_path):
    """A Ctrl-C while ddp_spawn processes imported their modules printed each one's KeyboardInterrupt traceback
    after the command's line, or left the other process waiting for it in the rendezvous and the command waiting
    for that one at its exit (a hang of 30 minutes, the rendezvous's time-out); a SIGTERM to the command's process
    alone ended it while its processes ran on (a SIGTERM as it handed a process its Trainer: that process's
    'pickle data was truncated' traceback). The signals are held while the processes start and delivered after;
    the processes still running when the command stops are ended. Predict and validate: one line, 128 + the signal,
    nothing left (no output, no temporary or lock file). A fit: after its 'received' line, nothing trained and no
    run folder when the processes had the signal too, else the first epoch's exact resume point."""
    _, run, _ = trained
    name = signal.Signals(signum).name
    out = tmp_path / "out"
    out.mkdir()
    strategy_args = ["--trainer.strategy", strategy]
    code, lines = _signalled(tmp_path, ["predict", "--run", str(run), "--out", str(out / "p.h5"), *strategy_args],
                             target, signum)
    assert (code, lines) == (128 + signum, [f"neurodyn predict: interrupted ({name}); nothing partial was kept"])
    code, lines = _signalled(tmp_path, ["validate", "--run", str(run), *strategy_args], target, signum)
    assert (code, lines) == (128 + signum, [f"neurodyn validate: interrupted ({name}); nothing partial was kept"])
    code, lines = _signalled(tmp_path, ["fit", "--config", str(run / "config.yaml"), "--trainer.default_root_dir",
                                        str(out), "--run-name", "new", *strategy_args], target, signum)
    if target == "group":  # the processes had it too, before their run: nothing trained
        assert code == 128 + signum and lines[-1] == (f"neurodyn fit: interrupted by {name} before any epoch "
                                                      "finished; nothing to resume"), lines
        assert list(out.iterdir()) == []
    else:  # handed on to the processes (as during a fit): the first epoch finishes, an exact resume point
        assert code == 128 + signum and lines[-1] == (f"neurodyn fit: interrupted by {name} after finishing the "
                                                      f"epoch; resume with: neurodyn fit --run {out / 'new'}"), lines
        assert [p.name for p in out.iterdir()] == ["new"] and (out / "new" / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_validate_is_one_line(signum, trained, tmp_path, monkeypatch, capsys):
    """A SIGTERM during a validate or test ended it with exit code 0 and nothing said (Lightning's orderly stop: its
    SIGTERMException is a SystemExit without a code), a Ctrl-C with exit code 1 and nothing said (Lightning's
    ``sys.exit(1)``). Both are now the command's one line and 128 + the signal."""
    from neurodyn.training.module import LangevinFlowModule

    _, run, _ = trained
    step = LangevinFlowModule.validation_step

    def validation_step(self, *args, **kwargs):
        os.kill(os.getpid(), signum)
        return step(self, *args, **kwargs)

    monkeypatch.setattr(LangevinFlowModule, "validation_step", validation_step)
    capsys.readouterr()
    for command in ("validate", "test"):
        assert main([command, "--run", str(run), "--trainer.accelerator", "cpu"]) == 128 + signum
        assert capsys.readouterr().err.splitlines() == [
            f"neurodyn {command}: interrupted ({signal.Signals(signum).name}); nothing partial was kept"]
