"""``neurodyn plot --out F``: the file's format follows its suffix; other suffixes are refused up front.

Before, every figure was written as PNG whatever the suffix (``--out p.pdf`` held PNG bytes).
"""

from __future__ import annotations

import gzip
import hashlib

import h5py
import numpy as np
import pytest

from neurodyn.cli import main
from neurodyn.errors import InputError
from neurodyn.io import write_h5_dict
from neurodyn.viz.prediction import plot_file


@pytest.fixture
def prediction(tmp_path):
    """A one-group NLB prediction file (as neurodyn predict / baseline write it)."""
    rates = np.random.default_rng(0).gamma(2.0, 0.05, (3, 10, 6)).astype(np.float32)
    tree = {"mc_maze_small_20": {"train_rates_heldin": rates[..., :4], "train_rates_heldout": rates[..., 4:],
                                 "eval_rates_heldin": rates[..., :4], "eval_rates_heldout": rates[..., 4:]}}
    path = tmp_path / "pred.h5"
    with h5py.File(path, "w") as f:
        write_h5_dict(f, tree)
    return path


def _is_png(data: bytes) -> bool:
    return data[:8] == b"\x89PNG\r\n\x1a\n"


def _is_pdf(data: bytes) -> bool:
    return data[:5] == b"%PDF-" and b"%%EOF" in data[-32:]


def _is_svg(data: bytes) -> bool:
    return data.lstrip().startswith(b"<?xml") and b"<svg" in data[:2000] and data.rstrip().endswith(b"</svg>")


@pytest.mark.parametrize(("name", "check"), [
    ("fig.png", _is_png),
    ("fig.pdf", _is_pdf),
    ("fig.svg", _is_svg),
    ("FIG.PDF", _is_pdf),                                   # the suffix in any case
    ("fig.svgz", lambda data: _is_svg(gzip.decompress(data))),
    ("fig.eps", lambda data: data.startswith(b"%!PS-Adobe")),
    ("fig.jpg", lambda data: data[:3] == b"\xff\xd8\xff"),
])
def test_format_follows_the_suffix(prediction, tmp_path, name, check, capsys):
    digest = hashlib.sha256(prediction.read_bytes()).hexdigest()
    out = tmp_path / "figs" / name
    assert main(["plot", str(prediction), "--out", str(out), "--dpi", "30"]) == 0
    assert f"wrote {out} (nlb layout)" in capsys.readouterr().out
    assert check(out.read_bytes()), out.read_bytes()[:16]
    assert sorted(p.name for p in out.parent.iterdir()) == [name]  # no temporary or lock file left
    assert hashlib.sha256(prediction.read_bytes()).hexdigest() == digest


@pytest.mark.parametrize("suffix", ["png", "pdf", "svg", "eps", "svgz"])
def test_the_same_file_gives_the_same_figure_bytes(prediction, tmp_path, suffix, monkeypatch):
    """Two plots of one prediction file, to two names, are the same bytes (with SOURCE_DATE_EPOCH, the
    reproducible-builds variable matplotlib takes for the creation dates). Before, SVG ids were hashed with a
    fresh uuid4 per file, and EPS's %%Title and the .svgz gzip header named the random temporary file."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    data = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.{suffix}"
        assert main(["plot", str(prediction), "--out", str(out), "--dpi", "30"]) == 0
        data.append(out.read_bytes())
    if suffix == "svgz":  # the gzip header (RFC 1952: 10 bytes, then the file name) names a.svg and b.svg
        assert [d[10:].split(b"\0")[0] for d in data] == [b"a.svg", b"b.svg"]
        assert data[0][4:8] == data[1][4:8] == bytes(4)  # the modification time: SOURCE_DATE_EPOCH's 0
        data = [gzip.decompress(d) for d in data]
    else:
        assert b".part" not in data[0]
    assert data[0] == data[1]


@pytest.mark.parametrize("suffix", ["pdf", "svg", "svgz", "eps"])
@pytest.mark.parametrize("value", ["1.5", "soon", " ", str(2**32), "-1"])
def test_a_malformed_source_date_epoch_is_one_line_before_any_work(tmp_path, suffix, value, monkeypatch, capsys):
    """A SOURCE_DATE_EPOCH that is no whole number of seconds gave matplotlib's ValueError traceback (PDF, SVG, EPS)
    or gzip's struct.error (.svgz, out of its 32-bit time); now one line naming the variable, exit 2, before the
    input is read (it does not exist here) and with nothing written."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", value)
    out = tmp_path / f"fig.{suffix}"
    assert main(["plot", str(tmp_path / "absent.h5"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error: SOURCE_DATE_EPOCH: must be whole seconds since 1970" in err[0], err
    assert f"a .{suffix} figure records it" in err[0] and repr(value) in err[0]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", ["pdf", "svg", "svgz", "eps"])
def test_an_empty_source_date_epoch_is_unset(prediction, tmp_path, suffix, monkeypatch):
    """SOURCE_DATE_EPOCH= (set, empty: a build script's way to clear it) is no date: matplotlib reads it so for
    PDF, SVG and PostScript, and .svgz did too; 53e6be4 refused it ('must be whole seconds since 1970', exit 2).
    It plots, with the clock's date."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "")
    out = tmp_path / f"fig.{suffix}"
    assert main(["plot", str(prediction), "--out", str(out), "--dpi", "30"]) == 0
    assert out.stat().st_size > 0


def test_a_png_does_not_read_source_date_epoch(prediction, tmp_path, monkeypatch):
    """PNG records no date: a malformed SOURCE_DATE_EPOCH does not stop it (as matplotlib ignores it there)."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "soon")
    assert main(["plot", str(prediction), "--out", str(tmp_path / "fig.png"), "--dpi", "30"]) == 0


def test_default_output_is_png(prediction):
    assert main(["plot", str(prediction), "--dpi", "30"]) == 0
    assert _is_png(prediction.with_suffix(".png").read_bytes())


@pytest.mark.parametrize(("name", "words"), [
    ("fig.txt", "unsupported figure format '.txt'"),
    ("fig.h5", "unsupported figure format '.h5'"),
    ("fig.pgf", "unsupported figure format '.pgf'"),      # matplotlib's, but needs LaTeX
    ("fig.raw", "unsupported figure format '.raw'"),      # headerless pixels
    ("figure", "no suffix to tell the figure format"),
])
def test_unsupported_suffix_is_one_line_before_any_work(tmp_path, name, words, capsys):
    """The input does not even exist: the suffix is refused before the file is read."""
    out = tmp_path / name
    assert main(["plot", str(tmp_path / "absent.h5"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"neurodyn plot: error: {out}: --out: {words} (suffixes: "), err
    listed = err[0].rsplit("(suffixes: ", 1)[1].rstrip(")").split(", ")
    assert {".png", ".pdf", ".svg"} <= set(listed) and ".pgf" not in listed and ".raw" not in listed
    assert list(tmp_path.iterdir()) == []


def test_unsupported_suffix_of_an_existing_input_writes_nothing(prediction, tmp_path, capsys):
    assert main(["plot", str(prediction), "--out", str(tmp_path / "fig.docx")]) == 2
    assert "--out: unsupported figure format '.docx'" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pred.h5"]


def test_library_formats():
    from neurodyn.viz.prediction import figure_format, figure_formats

    assert {"png", "pdf", "svg", "eps", "jpg"} <= set(figure_formats())
    assert not {"pgf", "raw", "rgba"} & set(figure_formats())
    assert figure_format("a/b.Svg") == "svg"
    with pytest.raises(InputError, match="^a/b: out: no suffix"):  # Python: the argument; neurodyn plot: --out
        figure_format("a/b")


def test_plot_file_writes_pdf(prediction, tmp_path):
    out, layout, group = plot_file(prediction, tmp_path / "p.pdf", dpi=30)
    assert (layout, group) == ("nlb", "mc_maze_small_20") and _is_pdf(out.read_bytes())
