"""Settings from one place: the Literal aliases in aligngs.config, and the CLI / server lists derived from them."""
from __future__ import annotations

import dataclasses
import typing

import pytest

from aligngs import config as C


def test_choices_reads_a_literal_in_order_and_refuses_anything_else():
    assert C.choices(C.PoseMethod) == ("auto", "known", "sfm", "vggt")
    assert C.choices(typing.Literal["b", "a"]) == ("b", "a")
    for bad in (str, "auto", typing.Optional[str], None):
        with pytest.raises(TypeError):
            C.choices(bad)


def test_literal_fields_walks_the_tree_and_every_default_is_a_choice():
    fields = C.literal_fields()
    assert fields["config.mode"] == ("aligngs", "3dgs")
    assert fields["config.data.poses"] == C.choices(C.PoseMethod)
    assert fields["config.train.semantics.teacher"] == C.choices(C.SemanticTeacherName)
    assert fields["config.train.semantics.depth_teacher"] == C.choices(C.DepthTeacherName)
    assert fields["config.train.loss.semantic_kl_norm"] == ("per_pixel", "reference")
    cfg = C.PipelineConfig()
    for path, allowed in fields.items():
        obj = cfg
        for part in path.split(".")[1:]:
            obj = getattr(obj, part)
        assert obj in allowed, path


def test_no_str_field_with_a_hand_listed_choice_is_left_untyped():
    """A str field whose comment lists alternatives ("a | b") should be a Literal alias instead."""
    def walk(cls):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(hints[f.name]):
                yield from walk(hints[f.name])
            else:
                yield cls, f, hints[f.name]

    for cls, f, hint in walk(C.PipelineConfig):
        if hint is str:
            assert f.name not in {"mode", "poses", "split", "size_mismatch", "teacher", "depth_teacher", "device",
                                  "semantic_kl_norm", "masks"}, f"{cls.__name__}.{f.name}"


def test_preset_names_match_the_presets():
    assert set(C.choices(C.PresetName)) - {"auto"} == set(C.PRESETS)


def test_cli_and_server_derive_their_lists():
    from aligngs.cli import main
    from aligngs.priors.depth import DEPTH_TEACHERS
    from aligngs.priors.teachers import SEMANTIC_TEACHERS

    assert SEMANTIC_TEACHERS == C.choices(C.SemanticTeacherName)
    assert DEPTH_TEACHERS == C.choices(C.DepthTeacherName)
    for flag, bad in (("--poses", "colmap"), ("--mode", "nerf"), ("--teacher", "sam")):
        with pytest.raises(SystemExit) as e:
            main(["reconstruct", "in", "--out", "out", flag, bad])
        assert e.value.code == 2
    pytest.importorskip("zmq")
    from backend import settings

    assert settings.CHOICES == C.literal_fields(C.PipelineConfig, "config")
    assert settings.SEMANTIC_TEACHERS == C.choices(C.SemanticTeacherName)
