"""SIGTERM stops a benchmark whole: one line, exit 143, its process-pool workers and their children stopped,
its temporary work folder removed (the jobs here sleep; nothing trains)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"

#: a stand-in for `neurodyn fit` (a grandchild of the benchmark): records its pid in $PIDS, then sleeps
SLEEPER = "import os, sys, time; open(os.path.join(os.environ['PIDS'], 'child%d' % os.getpid()), 'w').close(); " \
          "time.sleep(60)"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _start(tmp_path: Path, driver: str, env: dict | None = None) -> tuple[subprocess.Popen, Path]:
    pids = tmp_path / "pids"
    pids.mkdir()
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(driver))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BENCH), str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "PIDS": str(pids), "OMP_NUM_THREADS": "1", **(env or {})}
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    return proc, pids


def _terminate_when(proc: subprocess.Popen, pids: Path, n_children: int, signum=signal.SIGTERM):
    """Wait for ``n_children`` sleepers, send ``signum`` to the benchmark's process alone; (rc, stderr, pids)."""
    deadline = time.monotonic() + 40
    try:
        while len(list(pids.glob("child*"))) < n_children:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the jobs did not start: {proc.communicate(timeout=5)}")
            time.sleep(0.1)
        recorded = [int(p.name.removeprefix("child").removeprefix("worker")) for p in pids.iterdir()]
        os.kill(proc.pid, signum)
        _, err = proc.communicate(timeout=30)
        deadline = time.monotonic() + 15
        while any(_alive(p) for p in recorded) and time.monotonic() < deadline:
            time.sleep(0.1)
        return proc.returncode, err, recorded
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for p in pids.iterdir():  # never leave a sleeper behind, whatever failed
            pid = int(p.name.removeprefix("child").removeprefix("worker"))
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("context", ["fork", "spawn"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_worker_pool_stops_its_workers_their_children_and_their_temporary_folders(tmp_path, context, signum):
    proc, pids = _start(tmp_path, f"""
        import multiprocessing as mp
        import os
        import subprocess
        import sys
        import tempfile

        from _results import WorkerPool, exits_on_signals

        def job(i):
            open(os.path.join(os.environ["PIDS"], f"worker{{os.getpid()}}"), "w").close()
            with tempfile.TemporaryDirectory(dir=os.environ["PIDS"] + "/..", prefix="work") as tmp:
                subprocess.run([sys.executable, "-c", {SLEEPER!r}], check=True)
            return i

        @exits_on_signals
        def main():
            with WorkerPool(2, mp_context=mp.get_context({context!r})) as pool:
                print(list(pool.map(job, range(4))))
            return 0

        if __name__ == "__main__":
            raise SystemExit(main())
        """)
    rc, err, recorded = _terminate_when(proc, pids, 2, signum)
    assert rc == 128 + signum, err
    assert err.strip().splitlines() == [f"driver.py: stopped by {signal.Signals(signum).name}"], err
    assert len(recorded) >= 4 and not [p for p in recorded if _alive(p)]  # 2 workers, 2 sleepers
    assert not list(tmp_path.glob("work*"))


def test_a_stopped_pool_leaves_no_thread_to_race_the_interpreters_exit(tmp_path):
    """WorkerPool.stop shut the pool down without waiting first, which made ProcessPoolExecutor forget its
    management thread, so the waiting shutdown after it joined nothing: the thread, still closing the pool's wakeup
    pipe when the benchmark exited, raced CPython's exit hook writing to that pipe, and a fresh-clone CI run printed
    "Exception ignored in: <module 'threading'> ... OSError: [Errno 9] Bad file descriptor" after the one line
    (test_worker_pool_stops_its_workers_their_children_and_their_temporary_folders[15-fork]). Made certain here:
    the management thread is slowed down in its last step; once stop() returns it must have ended."""
    proc, _ = _start(tmp_path, """
        import concurrent.futures.process as cfp
        import threading
        import time

        from _results import WorkerPool

        finish = cfp._ExecutorManagerThread.join_executor_internals

        def slow_finish(self):
            time.sleep(1.5)
            finish(self)

        cfp._ExecutorManagerThread.join_executor_internals = slow_finish
        pool = WorkerPool(1, grace_s=5)
        future = pool.submit(time.sleep, 60)
        while not future.running():
            time.sleep(0.05)
        pool.stop()
        print(sum(isinstance(t, cfp._ExecutorManagerThread) and t.is_alive() for t in threading.enumerate()))
        """)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.split() == ["0"], (out, err)
    assert err == "", err


def test_a_second_signal_does_not_cut_a_stopping_workers_clean_up_short(tmp_path):
    """A worker unwinding its job after the pool's SIGTERM can get another signal: once one worker has exited,
    ProcessPoolExecutor finds the pool broken and terminates the others (SIGTERM again), and Ctrl-C reaches every
    process. The second one raised again inside the job's clean-up (a TemporaryDirectory's removal, a
    subprocess's kill), which stopped there: a fresh-clone CI run left a worker's temporary folder
    (test_worker_pool_stops_its_workers_their_children_and_their_temporary_folders[2-fork]). A worker that is
    already stopping now ignores further signals (SIGKILL after grace_s stays the backstop). Made certain here:
    the job's clean-up signals its own worker, then records that it finished."""
    proc, pids = _start(tmp_path, f"""
        import os
        import signal
        import subprocess
        import sys
        import time

        from _results import WorkerPool, exits_on_signals

        def job(i):
            open(os.path.join(os.environ["PIDS"], f"worker{{os.getpid()}}"), "w").close()
            try:
                subprocess.run([sys.executable, "-c", {SLEEPER!r}], check=True)
            finally:
                os.kill(os.getpid(), signal.SIGTERM)  # a second signal, while the job unwinds
                time.sleep(0.2)  # the handler runs here
                open(os.path.join(os.environ["PIDS"], "..", f"cleaned{{i}}"), "w").close()

        @exits_on_signals
        def main():
            with WorkerPool(1) as pool:
                print(list(pool.map(job, range(1))))
            return 0

        if __name__ == "__main__":
            raise SystemExit(main())
        """)
    rc, err, recorded = _terminate_when(proc, pids, 1)
    assert rc == 128 + signal.SIGTERM, err
    assert (tmp_path / "cleaned0").exists()  # the clean-up ran to its end
    assert not [p for p in recorded if _alive(p)]


def test_departures_sigterm_stops_its_workers(tmp_path):
    """departures' ProcessPoolExecutor workers trained on for minutes as orphans after its parent was killed."""
    proc, pids = _start(tmp_path, f"""
        import os
        import subprocess
        import sys

        import departures

        def job(variant, seed, epochs, threads):  # stands in for the Lorenz training
            open(os.path.join(os.environ["PIDS"], f"worker{{os.getpid()}}"), "w").close()
            subprocess.run([sys.executable, "-c", {SLEEPER!r}], check=True)

        departures._job = job
        raise SystemExit(departures.main(["--seeds", "0", "--variants", "neurodyn,reference_init", "--jobs", "2",
                                          "--epochs", "1", "--no-write"]))
        """)
    rc, err, recorded = _terminate_when(proc, pids, 2)
    assert rc == 143, err
    assert err.strip().splitlines()[-1] == "driver.py: stopped by SIGTERM", err
    assert "Traceback" not in err and len(recorded) >= 4 and not [p for p in recorded if _alive(p)]


def test_nlb_synthetic_sigterm_removes_its_work_folder_and_stops_the_step(tmp_path):
    """nlb_synthetic left its temporary work folder (13 MB per style and seed) and the running step behind."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc, pids = _start(tmp_path, f"""
        import sys
        from pathlib import Path

        import nlb_synthetic
        import neurodyn.data.synthetic.nlb_nwb as nwb

        def write_pair(folder, *args, **kwargs):  # stands in for the simulator (a few MB of NWB files)
            Path(folder).mkdir(parents=True)
            (Path(folder) / "train.nwb").write_bytes(bytes(100_000))

        nwb.write_nlb_pair = write_pair
        nlb_synthetic._neurodyn_exe = lambda: [sys.executable, "-c", {SLEEPER!r}]  # each `neurodyn` step sleeps
        raise SystemExit(nlb_synthetic.main(["--seeds", "0", "--styles", "mc_maze", "--members", "1",
                                             "--results-dir", "results"]))
        """, env={"TMPDIR": str(tmp)})
    rc, err, recorded = _terminate_when(proc, pids, 1)
    assert rc == 143, err
    assert err.strip().splitlines()[-1] == "driver.py: stopped by SIGTERM", err
    assert "Traceback" not in err and not [p for p in recorded if _alive(p)]
    assert not list(tmp.iterdir()) and not (tmp_path / "results").exists()
