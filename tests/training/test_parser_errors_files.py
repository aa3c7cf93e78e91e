"""Which config file set an option (:func:`neurodyn.training.parser_errors._file_with_key`): the one lookup that
names the file in a parser error, by key, by an option below it, and by the value the parser refused."""

from __future__ import annotations

from neurodyn.training.parser_errors import _file_with_key


def _files(tmp_path, **texts):
    paths = {}
    for name, text in texts.items():
        paths[name] = tmp_path / f"{name}.yaml"
        paths[name].write_text(text)
    return {name: str(path) for name, path in paths.items()}


def test_the_last_file_that_holds_the_key_or_an_option_below_it(tmp_path):
    f = _files(tmp_path, a="model:\n  init_args:\n    config:\n      latent_dim: 4\n",
               b="model:\n  init_args:\n    lr: 0.1\n", bad="model: [unclosed\n")
    files = [f["a"], f["b"], f["bad"]]
    assert _file_with_key(files, "model.init_args", None) == f["b"]
    assert _file_with_key(files, "model.init_args", "latent_dim") == f["a"]
    assert _file_with_key(files, "model.init_args.config.latent_dim", None) == f["a"]
    assert _file_with_key(files, "trainer", None) is None
    assert _file_with_key(files, None, "latent_dim") is None


def test_with_a_value_the_last_file_that_sets_it_in_either_spelling(tmp_path):
    """A value the parser refused (``abc``) belongs to the file that set it, spelt in full or short, not to a
    later file that set another value; a null is no value."""
    f = _files(tmp_path, full="model:\n  init_args:\n    config:\n      latent_dim: abc\n",
               short="model:\n  config:\n    latent_dim: abc\n",
               other="model:\n  init_args:\n    config:\n      latent_dim: 5\n",
               null="model:\n  init_args:\n    config:\n      latent_dim: null\n")
    key = "model.init_args.config.latent_dim"
    spellings = (key, "model.config.latent_dim")
    assert _file_with_key([f["full"], f["other"]], spellings, None, "abc") == f["full"]
    assert _file_with_key([f["full"], f["short"], f["other"]], spellings, None, "abc") == f["short"]
    assert _file_with_key([f["short"], f["full"]], key, None, "abc") == f["full"]
    assert _file_with_key([f["other"]], spellings, None, "5") == f["other"]
    assert _file_with_key([f["null"]], spellings, None, "None") is None
    assert _file_with_key([f["null"]], spellings, None) == f["null"]
