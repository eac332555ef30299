"""ADE20K-150 table: names, ids, synonyms, palette, colorize."""

import numpy as np
import pytest

from aligngs.priors import ade20k
from aligngs.priors.ade20k import CLASS_NAMES, CLASS_SYNONYMS, PALETTE, class_id, colorize

# Ids from the CSAIL objectInfo150 list (Idx - 1), checked by hand.
KNOWN = {
    "wall": 0, "building": 1, "sky": 2, "floor": 3, "ceiling": 5, "bed": 7, "windowpane": 8,
    "cabinet": 10, "door": 14, "table": 15, "curtain": 18, "chair": 19, "painting": 22, "sofa": 23,
    "shelf": 24, "rug": 28, "armchair": 30, "desk": 33, "wardrobe": 35, "lamp": 36, "cushion": 39,
    "pillow": 57, "bookcase": 62, "coffee table": 64, "book": 67, "television receiver": 89,
    "stool": 110, "vase": 135, "clock": 148, "flag": 149,
}


def test_150_unique_names_and_synonyms():
    assert len(CLASS_NAMES) == 150 == len(CLASS_SYNONYMS) == ade20k.NUM_CLASSES
    assert len(set(CLASS_NAMES)) == 150
    assert len(set(CLASS_SYNONYMS)) == 150
    for name in CLASS_NAMES:
        assert name == name.strip() and name == name.lower()


@pytest.mark.parametrize("name,cid", sorted(KNOWN.items()))
def test_known_ids(name, cid):
    assert CLASS_NAMES[cid] == name
    assert class_id(name) == cid
    assert class_id("  " + name.upper() + " ") == cid


def test_short_name_is_first_synonym_except_television():
    for i, (short, full) in enumerate(zip(CLASS_NAMES, CLASS_SYNONYMS)):
        first = full.split(",")[0].strip()
        if i == 89:
            assert first == "television" and short == "television receiver"
        else:
            assert short == first, i


def test_synonyms():
    assert class_id("couch") == 23 == class_id("Lounge")
    assert class_id("window") == 8
    assert class_id("double door") == 14
    assert class_id("chest of drawers") == 44 == class_id("dresser")
    assert class_id("television") == 89 == class_id("tv")
    assert ade20k.synonyms(23) == ("sofa", "couch", "lounge")
    # short names win over other classes' synonyms
    assert class_id("screen") == 130
    assert class_id("counter") == 45
    assert class_id("pot") == 125
    # every synonym resolves to its class unless another class owns it as short name or it is shared
    shorts = set(CLASS_NAMES)
    for i, full in enumerate(CLASS_SYNONYMS):
        for syn in (s.strip() for s in full.split(",")):
            if syn in shorts or syn == "ground":
                continue
            assert class_id(syn) == i, syn


def test_bad_names_raise_with_hints():
    with pytest.raises(ade20k.UnknownClassNameError, match="chair"):
        class_id("chiar")
    with pytest.raises(ade20k.AmbiguousClassNameError, match="earth.*land"):
        class_id("ground")
    with pytest.raises(TypeError):
        class_id(3)  # type: ignore[arg-type]


def test_palette():
    assert len(PALETTE) == 150
    assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in PALETTE)
    assert PALETTE[0] == (120, 120, 120)  # wall
    assert PALETTE[3] == (80, 50, 50)  # floor
    assert PALETTE[19] == (204, 70, 3)  # chair
    assert PALETTE[149] == (92, 0, 255)  # flag
    # The published palette has exactly one repeated colour: road (6) and skyscraper (48).
    assert len(set(PALETTE)) == 149
    assert PALETTE[6] == PALETTE[48] == (140, 140, 140)


def test_colorize():
    labels = np.array([[-1, 0, 3], [149, 19, 6]], dtype=np.int16)
    rgb = colorize(labels)
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 3, 3)
    assert rgb[0, 0].tolist() == [0, 0, 0]
    assert rgb[0, 1].tolist() == [120, 120, 120]
    assert rgb[0, 2].tolist() == [80, 50, 50]
    assert rgb[1, 0].tolist() == [92, 0, 255]
    assert rgb[1, 1].tolist() == [204, 70, 3]
    full = colorize(np.arange(150).reshape(10, 15))
    assert [tuple(c) for c in full.reshape(-1, 3).tolist()] == list(PALETTE)
    with pytest.raises(ValueError, match="-1..149"):
        colorize(np.array([[150]]))
    with pytest.raises(ValueError, match="-1..149"):
        colorize(np.array([[-2]]))
    with pytest.raises(ValueError, match="integer"):
        colorize(np.zeros((2, 2), dtype=np.float32))
