"""One exception root: every exception class defined under aligngs/ derives from AlignGSError (aligngs.wire, which
is vendored alone into the add-on, has its own root WireError), user errors from UserError, and no two aligngs
exception classes share a name."""
from __future__ import annotations

import importlib
import inspect
import os
import pkgutil

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import aligngs  # noqa: E402
from aligngs.errors import AlignGSError, Cancelled, UserError  # noqa: E402


def _exception_classes() -> dict[str, list[type]]:
    found: dict[str, list[type]] = {}
    for info in pkgutil.walk_packages(aligngs.__path__, "aligngs."):
        mod = importlib.import_module(info.name)
        for name, obj in vars(mod).items():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == info.name:
                found.setdefault(name, []).append(obj)
    return found


CLASSES = _exception_classes()


def test_the_walk_sees_the_known_exceptions():
    for name in ("DataError", "CheckpointNotFoundError", "EmptyMeshError", "MethodUnavailable", "WireError"):
        assert name in CLASSES


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_every_exception_has_the_root(name):
    for cls in CLASSES[name]:
        if cls.__module__.startswith("aligngs.wire"):
            from aligngs.wire.errors import WireError

            assert issubclass(cls, WireError), cls
        else:
            assert issubclass(cls, AlignGSError), f"{cls.__module__}.{name} does not derive from AlignGSError"


def test_no_two_exception_classes_share_a_name():
    assert {n: c for n, c in CLASSES.items() if len(c) > 1} == {}


def test_user_errors_keep_their_builtin_base_and_carry_a_fix():
    from aligngs.data.errors import DataError
    from aligngs.priors.ade20k import UnknownClassNameError
    from aligngs.priors.models import CheckpointNotFoundError

    e = CheckpointNotFoundError("org/model", "offline")
    assert isinstance(e, UserError) and isinstance(e, FileNotFoundError)
    assert "aligngs models download org/model" in e.fix and e.fix in str(e)
    d = DataError("a/b.png", "not an image", fix="convert it to PNG")
    assert isinstance(d, ValueError) and str(d) == "a/b.png: not an image" and d.fix == "convert it to PNG"
    assert issubclass(UnknownClassNameError, KeyError) and issubclass(UnknownClassNameError, UserError)
    assert issubclass(Cancelled, AlignGSError) and not issubclass(Cancelled, UserError)
