"""``neurodyn info``: NWB, prepared, LFADS-format and plain HDF5 files; bad input."""

from __future__ import annotations

import re
import shlex

import h5py
import numpy as np
import pytest

from neurodyn.cli import main
from neurodyn.data.info import file_kind
from neurodyn.data.prepare import prepare
from neurodyn.errors import InputError

pytestmark = pytest.mark.xdist_group("nlb_data")


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")


def test_nwb_folder(maze_pair, capsys):
    assert main(["info", str(maze_pair)]) == 0
    out = capsys.readouterr().out
    assert "14 (10 held-in, 4 held-out)" in out
    assert "hand_vel" in out and "1000 Hz" in out
    for split, n in (("test", 8), ("train", 18), ("val", 6)):
        assert re.search(rf"│ {split}\s+│ {n}\s+│", out)


@pytest.mark.requires_data
def test_real_nwb(small_test_nwb, capsys):
    assert main(["info", str(small_test_nwb)]) == 0
    out = capsys.readouterr().out
    assert "107 (107 held-in, 0 held-out)" in out and "79.900 s" in out and "32897" in out
    assert "time series: none" in out and "Time series (0)" not in out  # the test file has no behaviour


def test_prepared_lfads_and_plain(maze_pair, tmp_path, capsys):
    out = prepare("mc_maze", maze_pair, 5, "test", tmp_path / "p.h5", log=None)
    assert file_kind(out) == "prepared"
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert (
        "neurodyn-prepared-nlb" in text and "eval_input/eval_spikes_heldin" in text and "(8, 140, 10)" in text
    )
    lfads = tmp_path / "lfads.h5"
    with h5py.File(lfads, "w") as f:
        f["train_data"] = np.zeros((5, 7, 3), dtype=np.int64)
        f["valid_data"] = np.zeros((2, 7, 3), dtype=np.int64)
    assert file_kind(lfads) == "lfads"
    assert main(["info", str(lfads)]) == 0
    text = capsys.readouterr().out
    assert "LFADS-format" in text and "train_data" in text and "(5, 7, 3)" in text
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f.create_group("a/b")["c"] = np.ones(4)
    assert file_kind(plain) == "hdf5"
    assert main(["info", str(plain)]) == 0
    assert "a/b/c" in capsys.readouterr().out


def test_bad_input(tmp_path, bad_files, capsys):
    assert main(["info", str(bad_files["text"])]) == 2
    err = capsys.readouterr().err
    assert "not an HDF5 file" in err and str(bad_files["text"]) in err
    assert main(["info", str(tmp_path / "none.h5")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["info", str(bad_files["truncated"])]) == 2
    empty = tmp_path / "empty folder"  # said only 'folder holds no .nwb files', while info reads run folders too
    empty.mkdir()
    capsys.readouterr()
    assert main(["info", str(empty)]) == 2
    assert capsys.readouterr().err.strip() == (f"neurodyn info: error: {empty}: folder holds no .nwb files and is no "
                                               "run folder of neurodyn fit (config.yaml and the run's checkpoint "
                                               "folder: checkpoints/, or the checkpoint.dirpath that config.yaml "
                                               "records) or of neurodyn tune (summary.json, best.yaml and best.ckpt)")
    # a negative --max-rows listed all but its last rows and said '… 17 more' of a 16-dataset file
    capsys.readouterr()
    assert main(["info", "--max-rows", "-1", str(bad_files["truncated"])]) == 2
    assert capsys.readouterr().err.strip() == "neurodyn info: error: --max-rows: must be >= 0, got -1"


def test_prediction_file_values_and_no_wrapping(tmp_path, monkeypatch, capsys):
    """A prediction file: per-group shapes, dtypes and min / mean / max; when the output is not a terminal
    (here: captured) names are never wrapped, however narrow the console says it is."""
    from neurodyn.metrics.submission import write_submission

    rates = {"train_rates_heldin": np.full((3, 4, 2), 0.5), "train_rates_heldout": np.full((3, 4, 1), 0.25),
             "eval_rates_heldin": np.full((2, 4, 2), 0.5), "eval_rates_heldout": np.full((2, 4, 1), 2.0),
             "eval_rates_heldin_forward": np.ones((2, 3, 2)), "eval_rates_heldout_forward": np.ones((2, 3, 1))}
    path = write_submission(tmp_path / "pred.h5", {"mc_maze_small_20": rates})
    monkeypatch.setenv("COLUMNS", "40")
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "mc_maze_small_20" in out
    for key in rates:
        assert re.search(rf"│ {key}\s+│", out), out
    assert re.search(r"│ eval_rates_heldout\s+│ \(2, 4, 1\)\s+│ float32\s+│ 2\s+│ 2\s+│ 2\s+│", out), out


def test_prediction_and_plain_files_show_what_they_record(tmp_path, capsys):
    """info of a prediction file listed only its rate tables, and of any other HDF5 file only the names of
    its attributes: phase, data, checkpoint, model or a simulation's seed were nowhere to be read."""
    pred = tmp_path / "pred.h5"
    with h5py.File(pred, "w") as f:
        f["mc_maze_small_20/eval_rates_heldin"] = np.ones((2, 3, 4), np.float32)
        f.attrs.update({"phase": "test", "data": "/d/prep.h5", "checkpoint": "/r/last.ckpt",
                        "model_config": "x" * 500})
    assert main(["info", str(pred)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"phase\s+│ test", out) and re.search(r"checkpoint\s+│ /r/last.ckpt", out), out
    assert "… (500 characters)" in out  # a long value is cut
    states = tmp_path / "states.h5"
    with h5py.File(states, "w") as f:
        f["valid_posteriors"] = np.full((2, 5, 2), 0.5)
        f.attrs.update({"module": "HMMGLMModule", "n_states": 2, "seed": 7})
    assert main(["info", str(states)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"n_states\s+│ 2", out) and re.search(r"seed\s+│ 7", out), out


def test_a_prediction_of_a_lorenz_or_switching_glm_file_is_shown_as_one(tmp_path, capsys):
    """``neurodyn predict`` of a Lorenz / LFADS file (or a switching GLM) was listed as a plain 'HDF5' file of
    dataset names: which rates, of what size, came from where was not shown (helper-48)."""
    from neurodyn.data.info import info

    pred = tmp_path / "pred.h5"
    with h5py.File(pred, "w") as f:
        f["valid_rates"] = np.array([[[0.5, 1.5]], [[1.0, 3.0]]], np.float32)
        f["valid_z"] = np.zeros((2, 1, 3), np.float32)
        f.attrs.update({"module": "LangevinFlowModule", "checkpoint": "/r/last.ckpt", "datamodule": "LFADSDataModule"})
    assert info(pred) == "prediction"
    out = capsys.readouterr().out
    assert f"Prediction file {pred} (LangevinFlowModule, 2 arrays; rates in spikes per bin)" in out, out
    assert re.search(r"│ valid_rates\s+│ \(2, 1, 2\)\s+│ float32\s+│ 0.5\s+│ 1.5\s+│ 3\s+│", out), out
    assert re.search(r"checkpoint\s+│ /r/last.ckpt", out), out
    # a file of no neurodyn prediction stays a plain HDF5 listing
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["valid_rates"] = np.ones((2, 1, 2), np.float32)
    assert info(plain) == "hdf5"


def test_square_brackets_in_what_a_file_records_are_shown_as_written(tmp_path, capsys):
    """rich read ``[exc]``, ``[inh]`` and ``[s, post, pre]`` in an attribute as markup tags and dropped them:
    info of a one-hot HMM-GLM file showed ``coupling_softmax_definition`` as ``(softmax(A) - softmax(A))``, a
    coupling of zero, and ``coupling_definition`` without the axes of ``W[s, post, pre]``."""
    from neurodyn.models.hmmglm.readout import COUPLING_DEFINITION, COUPLING_SOFTMAX_DEFINITION

    assert "[exc]" in COUPLING_SOFTMAX_DEFINITION and "[s, post, pre]" in COUPLING_DEFINITION
    pred = tmp_path / "[run] pred.h5"
    with h5py.File(pred, "w") as f:
        f["valid_posteriors"] = np.full((2, 5, 2), 0.5, np.float32)
        f.attrs.update({"module": "HMMGLMModule", "checkpoint": "/r/[bold]last.ckpt",
                        "coupling_definition": COUPLING_DEFINITION,
                        "coupling_softmax_definition": COUPLING_SOFTMAX_DEFINITION})
    assert main(["info", str(pred)]) == 0
    out = capsys.readouterr().out
    assert COUPLING_SOFTMAX_DEFINITION in out, out
    assert COUPLING_DEFINITION[:40] in out, out  # cut at the column width, with its length
    assert "/r/[bold]last.ckpt" in out and f"Prediction file {pred}" in out, out


def test_a_switching_glm_prediction_is_not_said_to_hold_rates(tmp_path, capsys):
    """info titled a switching GLM's prediction file 'rates in spikes per bin', a file with no rates; what it
    holds instead (state posteriors, log_marginal in nats per sequence) had no unit anywhere."""
    from neurodyn.data.info import info

    pred = tmp_path / "pred.h5"
    with h5py.File(pred, "w") as f:
        f["valid_posteriors"] = np.full((2, 5, 2), 0.5, np.float32)
        f["valid_log_marginal"] = np.array([-300.0, -250.0])
        f["coupling"] = np.zeros((2, 3, 3), np.float32)
        f.attrs.update({"module": "HMMGLMModule", "checkpoint": "/r/last.ckpt"})
    assert info(pred) == "prediction"
    out = capsys.readouterr().out
    title = next(line for line in out.splitlines() if line.startswith(f"Prediction file {pred} ("))
    assert "rates" not in title, title
    assert "log_marginal: log p(spikes) in nats per sequence" in title and "summing to 1" in title, title


def _what_next(capsys) -> tuple[str, list[str]]:
    """The ``what:`` line and the ``next:`` command lines that end a summary."""
    out = capsys.readouterr().out.splitlines()
    what = [line[len("what: "):] for line in out if line.startswith("what: ")]
    assert len(what) == 1, out
    return what[0], [line[len("next: "):] for line in out if line.startswith("next: ")]


def test_every_kind_of_file_says_what_it_is_and_which_commands_take_it_next(maze_pair, tmp_path, capsys):
    """``info`` listed a file's arrays but never said what the file is for: a prepared file's phase and bin
    width were rows among its attributes, a switching-GLM data file was a plain 'HDF5' file, and no summary
    named the command that takes the file next. Each summary now ends with ``what:`` and ``next:`` lines;
    a path with spaces is quoted so that the line can be pasted into a shell."""
    from neurodyn.metrics.submission import expected_shapes_from_prepared, write_submission

    test_nwb = maze_pair / "sub-Synth_ses-mcmaze_desc-test_ecephys.nwb"
    assert main(["info", str(test_nwb)]) == 0
    what, steps = _what_next(capsys)
    assert what.startswith("raw NLB data (NWB file): 8 trials") and "test trials only" in what
    assert steps == [f"neurodyn prepare --dataset DATASET --nwb {test_nwb} --bin-ms 20 --phase test  (or --bin-ms 5)"]
    assert main(["info", str(maze_pair)]) == 0
    what, steps = _what_next(capsys)
    assert what.startswith("raw NLB data (NWB folder): 32 trials") and [s.split("--phase")[1][:5] for s in steps] \
        == [" val ", " test"]

    folder = tmp_path / "my data ü"
    folder.mkdir()
    prep = prepare("mc_maze", maze_pair, 20, "val", folder / "prep 20.h5", include_psth=False, log=None)
    assert main(["info", str(prep)]) == 0
    what, steps = _what_next(capsys)
    quoted = f"'{prep}'"
    assert what == ("prepared NLB tensors (neurodyn prepare): mc_maze, val phase, 20 ms bins; 18 train + 6 eval "
                    "trials, 10 held-in + 4 held-out units")
    assert steps == [f"neurodyn fit --config configs/langevinflow/mc_maze_cpu.yaml --data.init_args.path {quoted}",
                     f"neurodyn baseline --prepared {quoted} --out PRED.h5",
                     f"neurodyn predict --run RUN --ckpt_path last --data.init_args.path {quoted} "
                     "--prediction.path PRED.h5",
                     f"neurodyn evaluate --target {quoted} --pred PRED.h5",
                     f"neurodyn submit --pred PRED.h5 --prepared {quoted} --out SUBMISSION.h5"]
    test_only = prepare("mc_maze", test_nwb, 5, "test", tmp_path / "t.h5", log=None)
    assert main(["info", str(test_only)]) == 0
    what, steps = _what_next(capsys)
    assert "test phase, 5 ms bins" in what and "no training trials" in what and "no eval_target" in what
    assert steps == [f"neurodyn submit --pred PRED.h5 --prepared {test_only} --out SUBMISSION.h5"]

    (name, shapes), = expected_shapes_from_prepared(prep).items()
    pred = write_submission(tmp_path / "pred.h5", {name: {k: np.full(s, 0.1) for k, s in shapes.items()}},
                            attrs={"phase": "val", "baseline": "nlb_tools", "data": str(prep)})
    assert main(["info", str(pred)]) == 0
    what, steps = _what_next(capsys)
    assert what == ("NLB rate predictions (spikes per bin, submission layout) of neurodyn baseline (nlb_tools "
                    "recipe); mc_maze_20: 20 ms; val phase")
    assert steps == [f"neurodyn evaluate --target {quoted} --pred {pred}",
                     f"neurodyn submit --pred {pred} --prepared {quoted} --out SUBMISSION.h5",
                     f"neurodyn ensemble --pred {pred} OTHER.h5 --out ENSEMBLE.h5", f"neurodyn plot {pred}"]

    sglm = tmp_path / "sglm.h5"
    assert main(["simulate", "switching-glm", "--out", str(sglm), "--n-states", "2", "--n-neurons", "3",
                 "--n-sequences", "5", "--n-bins", "20", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["info", str(sglm)]) == 0
    what, steps = _what_next(capsys)
    assert what.startswith("simulated switching-GLM data (neurodyn simulate switching-glm)")
    assert steps == [f"neurodyn fit --config configs/hmmglm/synthetic_hmmglm.yaml --data.init_args.path {sglm} "
                     "--data.init_args.n_states null --data.init_args.n_neurons null --data.init_args.n_sequences "
                     "null --data.init_args.n_bins null --data.init_args.n_train 3"]
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["a"] = np.ones(3)
    assert main(["info", str(plain)]) == 0
    what, steps = _what_next(capsys)
    assert what.startswith("an HDF5 file of no kind neurodyn reads")
    assert steps == ["none (no neurodyn command reads it)"]


def test_a_fit_config_is_summarised_and_a_broken_one_is_one_line(tmp_path, capsys):
    """A YAML config of ``neurodyn fit`` was 'not an HDF5 file (info reads NWB and HDF5 files)' though info's
    help lists what fit writes; it is summarised now, and a file that is not YAML, or YAML that is no fit
    config, is one line naming the file."""
    config = tmp_path / "my config.yaml"
    config.write_text("seed_everything: 3\ntrainer:\n  max_epochs: 7\nmodel:\n  class_path: LangevinFlowModule\n"
                      "data:\n  class_path: NLBDataModule\n  init_args:\n    path: data/x.h5\n")
    assert main(["info", str(config)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"│ data\s+│ NLBDataModule \(data/x.h5\)", out) and re.search(r"trainer.max_epochs\s+│ 7", out)
    assert out.splitlines()[-2:] == ["what: config of neurodyn fit (LightningCLI YAML)",
                                     f"next: neurodyn fit --config '{config}'"]
    for text, words in (("a: [unclosed\n", "not a readable YAML file (ParserError at line 2"),
                        ("- 1\n- 2\n", "not a config of neurodyn fit (no model, data, trainer or seed_everything")):
        config.write_text(text)
        assert main(["info", str(config)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"neurodyn info: error: {config}: {words}"), err
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    assert main(["info", str(text)]) == 2
    assert capsys.readouterr().err.strip() == (f"neurodyn info: error: {text}: not an HDF5 file (info reads NWB and "
                                               "other HDF5 files, checkpoints (.ckpt), fit configs (.yaml) and run "
                                               "folders)")


def test_a_summary_opens_the_file_once_besides_telling_its_kind(maze_pair, tmp_path, capsys, monkeypatch):
    """The what: / next: lines of a prepared, prediction or other HDF5 file opened the file again for its root
    attributes (one more read of a streamed URL); they are read where the summary reads the file."""
    import neurodyn.data.info as info_module
    from neurodyn.metrics.submission import expected_shapes_from_prepared, write_submission

    prep = prepare("mc_maze", maze_pair, 20, "val", tmp_path / "p.h5", include_psth=False, log=None)
    (name, shapes), = expected_shapes_from_prepared(prep).items()
    pred = write_submission(tmp_path / "pred.h5", {name: {k: np.full(s, 0.1) for k, s in shapes.items()}},
                            attrs={"phase": "val"})
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["spikes"] = np.ones((2, 3))
    real, opened = info_module._h5, []
    monkeypatch.setattr(info_module, "_h5", lambda path: opened.append(path) or real(path))
    # file_kind, (an HDF5 file of no NLB kind: the look for prediction groups,) then the summary
    for path, opens in ((prep, 2), (pred, 3), (plain, 3)):
        opened.clear()
        assert main(["info", str(path)]) == 0
        assert len(opened) == opens, (path, opened)
        assert capsys.readouterr().out.splitlines()[-1].startswith("next: ")


def test_an_nlb_file_is_named_by_its_dataset_in_the_next_command(small_test_nwb, tmp_path, capsys):
    """``info`` of a DANDI NLB file said ``--dataset DATASET`` in its ``next:`` line although the file is evidently
    MC_Maze_Small's (the evidence ``prepare`` uses to refuse another dataset's file: its DANDI name and size, its
    subject and units table). Now the line names the dataset and the ``what:`` line says how it was told; a
    renamed copy is still told by its units table; neurodyn's simulated files (no subject) keep the placeholder
    (test_every_kind_of_file_says_what_it_is_and_which_commands_take_it_next)."""
    import shutil

    assert main(["info", str(small_test_nwb)]) == 0
    what, steps = _what_next(capsys)
    assert "; MC_Maze_Small, DANDI:000140: its test file, by its name and size and its units table; " in what, what
    assert steps == [f"neurodyn prepare --dataset mc_maze_small --nwb {small_test_nwb} --bin-ms 20 --phase test  "
                     "(or --bin-ms 5)"]
    renamed = tmp_path / "session.nwb"
    shutil.copyfile(small_test_nwb, renamed)
    assert main(["info", str(tmp_path)]) == 0
    what, steps = _what_next(capsys)
    assert "; MC_Maze_Small, DANDI:000140: its test file, by its units table; " in what, what
    assert steps[0].startswith(f"neurodyn prepare --dataset mc_maze_small --nwb {tmp_path} "), steps
    # the command it names runs (prepare's own check agrees with the dataset named)
    assert main(shlex.split(steps[0].split("  (")[0])[1:] + ["--out", str(tmp_path / "p.h5"), "--quiet"]) == 0


def test_a_folder_that_is_no_run_folder_is_told_what_it_lacks_by_the_run_folder_rule(tmp_path):
    """``neurodyn.data.info`` said '(config.yaml and checkpoints/)' of every folder without .nwb files, also of one
    whose config.yaml records a checkpoint.dirpath: it says what ``why_no_run`` (the run-folder rule, passed in by
    ``neurodyn info``: this floor may not import training) says, and a run's whole record where none is given."""
    from neurodyn.data.info import info
    from neurodyn.training.checkpoint_index import why_no_run

    folder = tmp_path / "notes"
    (folder / "ck").mkdir(parents=True)
    (folder / "config.yaml").write_text(f"checkpoint:\n  dirpath: {folder / 'ck'}\n")
    with pytest.raises(InputError) as caught:
        file_kind(folder)
    assert "(config.yaml and checkpoints/)" not in str(caught.value) and "run.json" in str(caught.value)
    with pytest.raises(InputError) as caught:
        info(folder, why_no_run=why_no_run)
    assert f"({why_no_run(folder)})" in str(caught.value), str(caught.value)


def test_an_nwb_files_trial_columns_are_named_as_the_file_names_them(tmp_path, capsys):
    """info listed an NWB file's trial columns by the names nlb_tools reads them under (trial_id, end_time), which the
    file does not hold (id, stop_time); it now names the file's columns and says how nlb_tools renames them."""
    from neurodyn.data.synthetic.nlb_nwb import write_nlb_nwb

    nwb = write_nlb_nwb(tmp_path / "sub-Synth_desc-test_ecephys.nwb", "mc_maze", n_trials=4, n_heldin=3,
                        n_heldout=2, seed=1, split="test")
    assert main(["info", str(nwb)]) == 0
    line = [line for line in capsys.readouterr().out.splitlines() if line.startswith("trial columns: ")]
    assert line == ["trial columns: id, start_time, stop_time, move_onset_time, split (nlb_tools' names: id -> "
                    "trial_id, stop_time -> end_time)"], line
