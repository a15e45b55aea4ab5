"""`.py` modules are compiled once and cached (like `.pyc` files): what a user sees must not change."""

from __future__ import annotations

from pathlib import Path

import pytest

from nixus_py.evaluate import EvalError, eval_modules, mkOption, types


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NIXUS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def x_of(module: Path) -> object:
    """The int option `x` as the module file defines it."""
    return eval_modules([{"options": {"x": mkOption(type=types.int)}}, str(module)]).config.x


def test_a_changed_py_module_is_read_again(tmp_path: Path, cache: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("module = {'x': 1}\n")
    assert x_of(module) == 1
    module.write_text("module = {'x': 2}\n")  # same size, likely the same second: only the content differs
    assert x_of(module) == 2
    assert len(list((cache / "py").iterdir())) == 1  # one entry per file, replaced


def test_a_cached_py_module_still_names_the_line_of_each_definition(tmp_path: Path, cache: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("module = {\n    # not an int:\n    'x': 'one',\n}\n")
    errors = []
    for _ in range(2):  # compiled, then from the cache
        with pytest.raises(EvalError) as e:
            x_of(module)
        errors.append(str(e.value))
    assert list((cache / "py").iterdir())
    assert errors[0] == errors[1]
    assert "m.py:3" in errors[1]  # the line of `'x': 'one'` (the path may be shown relative)


def test_a_cache_entry_that_another_user_could_have_written_is_not_run(tmp_path: Path, cache: Path) -> None:
    """An entry's key is public (the source and its path): only the user's own entries count."""
    import marshal
    module = tmp_path / "m.py"
    module.write_text("module = {'x': 1}\n")
    assert x_of(module) == 1
    entry, = (cache / "py").iterdir()
    key = entry.read_bytes()[:32]  # as nixus keys it: a sha256 of public data
    entry.write_bytes(key + marshal.dumps(compile("module = {'x': 99}\n", str(module), "exec")))
    entry.chmod(0o600)
    assert x_of(module) == 99  # a forged entry is taken when only its owner could write it...
    entry.write_bytes(key + marshal.dumps(compile("module = {'x': 99}\n", str(module), "exec")))
    entry.chmod(0o620)
    assert x_of(module) == 1  # ...and not when the group could
    entry.chmod(0o600)
    (cache / "py").chmod(0o777)
    entry.write_bytes(key + marshal.dumps(compile("module = {'x': 99}\n", str(module), "exec")))
    assert x_of(module) == 1  # nor when anyone could have replaced it in its directory


def test_the_cache_and_its_entries_are_made_the_users_alone(tmp_path: Path, cache: Path) -> None:
    """Were the cache directory wider, another user could swap in an entry of their own."""
    import stat
    module = tmp_path / "m.py"
    module.write_text("module = {'x': 1}\n")
    assert x_of(module) == 1
    entry, = (cache / "py").iterdir()
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert (mode(cache), mode(cache / "py"), mode(entry)) == (0o700, 0o700, 0o600)


def test_an_entry_that_is_not_trusted_is_written_again_and_then_used(tmp_path: Path, cache: Path) -> None:
    import marshal
    module = tmp_path / "m.py"
    module.write_text("module = {'x': 1}\n")
    assert x_of(module) == 1
    entry, = (cache / "py").iterdir()
    entry.write_bytes(entry.read_bytes()[:32] + marshal.dumps(compile("module = {'x': 99}\n", str(module), "exec")))
    entry.chmod(0o666)
    assert x_of(module) == 1  # compiled again, and the entry replaced by the user's own
    # The user's own entry, marked so that its use shows: trusted, as only its owner could write it.
    entry.write_bytes(entry.read_bytes()[:32] + marshal.dumps(compile("module = {'x': 7}\n", str(module), "exec")))
    assert x_of(module) == 7
