"""The 150 ADE20K SceneParsing classes: ids, names, synonyms and the standard colour palette.

Ids are the 0-based "reduced" ids used by models trained on ADE20K-150 (mmsegmentation's
``reduce_zero_label=True``): id ``k`` is line ``k + 1`` of the CSAIL list, and the raw ADE20K
annotation PNGs store ``k + 1`` (0 = "other"/void). This project's semantic maps store the same
``k + 1`` convention (see :mod:`tools.synth`).

Sources (copied verbatim, not retyped):

* Full synonym strings and order: CSAILVision/sceneparsing, ``objectInfo150.txt`` (column ``Name``,
  rows Idx 1..150), https://github.com/CSAILVision/sceneparsing . Stray trailing blanks in that file
  ("bed ", "windowpane, window ", "bicycle, ..., cycle ") are stripped.
* Short display names and palette: open-mmlab/mmsegmentation, ``mmseg/datasets/ade.py``,
  ``ADE20KDataset.METAINFO['classes']`` / ``['palette']`` (the same palette as CSAIL's
  ``color150.mat``). The short name is the first synonym of the CSAIL string except for id 89, where
  mmsegmentation (and most model configs) use "television receiver" rather than "television";
  :func:`class_id` accepts both.
* The standard palette is not injective: road (6) and skyscraper (48) share (140, 140, 140). It is
  kept as published so colourised maps match other tools; it holds 149 distinct colours.

Synonym look-up: :func:`class_id` accepts a short name or any synonym, case-insensitively and with
whitespace normalised. A short name always wins (e.g. "screen" -> 130, "counter" -> 45, "stool"
-> 110, "pot" -> 125); a synonym that is nobody's short name and belongs to several classes
("ground": earth 13 / land 94) raises :class:`AmbiguousClassNameError`.
"""

from __future__ import annotations

import difflib

import numpy as np

from ..errors import UserError

__all__ = [
    "NUM_CLASSES",
    "CLASS_NAMES",
    "CLASS_SYNONYMS",
    "PALETTE",
    "UnknownClassNameError",
    "AmbiguousClassNameError",
    "class_id",
    "class_name",
    "synonyms",
    "colorize",
]

NUM_CLASSES = 150

CLASS_NAMES: tuple[str, ...] = (
    'wall',  # 0
    'building',  # 1
    'sky',  # 2
    'floor',  # 3
    'tree',  # 4
    'ceiling',  # 5
    'road',  # 6
    'bed',  # 7
    'windowpane',  # 8
    'grass',  # 9
    'cabinet',  # 10
    'sidewalk',  # 11
    'person',  # 12
    'earth',  # 13
    'door',  # 14
    'table',  # 15
    'mountain',  # 16
    'plant',  # 17
    'curtain',  # 18
    'chair',  # 19
    'car',  # 20
    'water',  # 21
    'painting',  # 22
    'sofa',  # 23
    'shelf',  # 24
    'house',  # 25
    'sea',  # 26
    'mirror',  # 27
    'rug',  # 28
    'field',  # 29
    'armchair',  # 30
    'seat',  # 31
    'fence',  # 32
    'desk',  # 33
    'rock',  # 34
    'wardrobe',  # 35
    'lamp',  # 36
    'bathtub',  # 37
    'railing',  # 38
    'cushion',  # 39
    'base',  # 40
    'box',  # 41
    'column',  # 42
    'signboard',  # 43
    'chest of drawers',  # 44
    'counter',  # 45
    'sand',  # 46
    'sink',  # 47
    'skyscraper',  # 48
    'fireplace',  # 49
    'refrigerator',  # 50
    'grandstand',  # 51
    'path',  # 52
    'stairs',  # 53
    'runway',  # 54
    'case',  # 55
    'pool table',  # 56
    'pillow',  # 57
    'screen door',  # 58
    'stairway',  # 59
    'river',  # 60
    'bridge',  # 61
    'bookcase',  # 62
    'blind',  # 63
    'coffee table',  # 64
    'toilet',  # 65
    'flower',  # 66
    'book',  # 67
    'hill',  # 68
    'bench',  # 69
    'countertop',  # 70
    'stove',  # 71
    'palm',  # 72
    'kitchen island',  # 73
    'computer',  # 74
    'swivel chair',  # 75
    'boat',  # 76
    'bar',  # 77
    'arcade machine',  # 78
    'hovel',  # 79
    'bus',  # 80
    'towel',  # 81
    'light',  # 82
    'truck',  # 83
    'tower',  # 84
    'chandelier',  # 85
    'awning',  # 86
    'streetlight',  # 87
    'booth',  # 88
    'television receiver',  # 89
    'airplane',  # 90
    'dirt track',  # 91
    'apparel',  # 92
    'pole',  # 93
    'land',  # 94
    'bannister',  # 95
    'escalator',  # 96
    'ottoman',  # 97
    'bottle',  # 98
    'buffet',  # 99
    'poster',  # 100
    'stage',  # 101
    'van',  # 102
    'ship',  # 103
    'fountain',  # 104
    'conveyer belt',  # 105
    'canopy',  # 106
    'washer',  # 107
    'plaything',  # 108
    'swimming pool',  # 109
    'stool',  # 110
    'barrel',  # 111
    'basket',  # 112
    'waterfall',  # 113
    'tent',  # 114
    'bag',  # 115
    'minibike',  # 116
    'cradle',  # 117
    'oven',  # 118
    'ball',  # 119
    'food',  # 120
    'step',  # 121
    'tank',  # 122
    'trade name',  # 123
    'microwave',  # 124
    'pot',  # 125
    'animal',  # 126
    'bicycle',  # 127
    'lake',  # 128
    'dishwasher',  # 129
    'screen',  # 130
    'blanket',  # 131
    'sculpture',  # 132
    'hood',  # 133
    'sconce',  # 134
    'vase',  # 135
    'traffic light',  # 136
    'tray',  # 137
    'ashcan',  # 138
    'fan',  # 139
    'pier',  # 140
    'crt screen',  # 141
    'plate',  # 142
    'monitor',  # 143
    'bulletin board',  # 144
    'shower',  # 145
    'radiator',  # 146
    'glass',  # 147
    'clock',  # 148
    'flag',  # 149
)

CLASS_SYNONYMS: tuple[str, ...] = (
    'wall',  # 0
    'building, edifice',  # 1
    'sky',  # 2
    'floor, flooring',  # 3
    'tree',  # 4
    'ceiling',  # 5
    'road, route',  # 6
    'bed',  # 7
    'windowpane, window',  # 8
    'grass',  # 9
    'cabinet',  # 10
    'sidewalk, pavement',  # 11
    'person, individual, someone, somebody, mortal, soul',  # 12
    'earth, ground',  # 13
    'door, double door',  # 14
    'table',  # 15
    'mountain, mount',  # 16
    'plant, flora, plant life',  # 17
    'curtain, drape, drapery, mantle, pall',  # 18
    'chair',  # 19
    'car, auto, automobile, machine, motorcar',  # 20
    'water',  # 21
    'painting, picture',  # 22
    'sofa, couch, lounge',  # 23
    'shelf',  # 24
    'house',  # 25
    'sea',  # 26
    'mirror',  # 27
    'rug, carpet, carpeting',  # 28
    'field',  # 29
    'armchair',  # 30
    'seat',  # 31
    'fence, fencing',  # 32
    'desk',  # 33
    'rock, stone',  # 34
    'wardrobe, closet, press',  # 35
    'lamp',  # 36
    'bathtub, bathing tub, bath, tub',  # 37
    'railing, rail',  # 38
    'cushion',  # 39
    'base, pedestal, stand',  # 40
    'box',  # 41
    'column, pillar',  # 42
    'signboard, sign',  # 43
    'chest of drawers, chest, bureau, dresser',  # 44
    'counter',  # 45
    'sand',  # 46
    'sink',  # 47
    'skyscraper',  # 48
    'fireplace, hearth, open fireplace',  # 49
    'refrigerator, icebox',  # 50
    'grandstand, covered stand',  # 51
    'path',  # 52
    'stairs, steps',  # 53
    'runway',  # 54
    'case, display case, showcase, vitrine',  # 55
    'pool table, billiard table, snooker table',  # 56
    'pillow',  # 57
    'screen door, screen',  # 58
    'stairway, staircase',  # 59
    'river',  # 60
    'bridge, span',  # 61
    'bookcase',  # 62
    'blind, screen',  # 63
    'coffee table, cocktail table',  # 64
    'toilet, can, commode, crapper, pot, potty, stool, throne',  # 65
    'flower',  # 66
    'book',  # 67
    'hill',  # 68
    'bench',  # 69
    'countertop',  # 70
    'stove, kitchen stove, range, kitchen range, cooking stove',  # 71
    'palm, palm tree',  # 72
    'kitchen island',  # 73
    'computer, computing machine, computing device, data processor, electronic computer, information processing system',  # 74  # noqa: E501
    'swivel chair',  # 75
    'boat',  # 76
    'bar',  # 77
    'arcade machine',  # 78
    'hovel, hut, hutch, shack, shanty',  # 79
    'bus, autobus, coach, charabanc, double-decker, jitney, motorbus, motorcoach, omnibus, passenger vehicle',  # 80  # noqa: E501
    'towel',  # 81
    'light, light source',  # 82
    'truck, motortruck',  # 83
    'tower',  # 84
    'chandelier, pendant, pendent',  # 85
    'awning, sunshade, sunblind',  # 86
    'streetlight, street lamp',  # 87
    'booth, cubicle, stall, kiosk',  # 88
    'television, television receiver, television set, tv, tv set, idiot box, boob tube, telly, goggle box',  # 89  # noqa: E501
    'airplane, aeroplane, plane',  # 90
    'dirt track',  # 91
    'apparel, wearing apparel, dress, clothes',  # 92
    'pole',  # 93
    'land, ground, soil',  # 94
    'bannister, banister, balustrade, balusters, handrail',  # 95
    'escalator, moving staircase, moving stairway',  # 96
    'ottoman, pouf, pouffe, puff, hassock',  # 97
    'bottle',  # 98
    'buffet, counter, sideboard',  # 99
    'poster, posting, placard, notice, bill, card',  # 100
    'stage',  # 101
    'van',  # 102
    'ship',  # 103
    'fountain',  # 104
    'conveyer belt, conveyor belt, conveyer, conveyor, transporter',  # 105
    'canopy',  # 106
    'washer, automatic washer, washing machine',  # 107
    'plaything, toy',  # 108
    'swimming pool, swimming bath, natatorium',  # 109
    'stool',  # 110
    'barrel, cask',  # 111
    'basket, handbasket',  # 112
    'waterfall, falls',  # 113
    'tent, collapsible shelter',  # 114
    'bag',  # 115
    'minibike, motorbike',  # 116
    'cradle',  # 117
    'oven',  # 118
    'ball',  # 119
    'food, solid food',  # 120
    'step, stair',  # 121
    'tank, storage tank',  # 122
    'trade name, brand name, brand, marque',  # 123
    'microwave, microwave oven',  # 124
    'pot, flowerpot',  # 125
    'animal, animate being, beast, brute, creature, fauna',  # 126
    'bicycle, bike, wheel, cycle',  # 127
    'lake',  # 128
    'dishwasher, dish washer, dishwashing machine',  # 129
    'screen, silver screen, projection screen',  # 130
    'blanket, cover',  # 131
    'sculpture',  # 132
    'hood, exhaust hood',  # 133
    'sconce',  # 134
    'vase',  # 135
    'traffic light, traffic signal, stoplight',  # 136
    'tray',  # 137
    'ashcan, trash can, garbage can, wastebin, ash bin, ash-bin, ashbin, dustbin, trash barrel, trash bin',  # 138  # noqa: E501
    'fan',  # 139
    'pier, wharf, wharfage, dock',  # 140
    'crt screen',  # 141
    'plate',  # 142
    'monitor, monitoring device',  # 143
    'bulletin board, notice board',  # 144
    'shower',  # 145
    'radiator',  # 146
    'glass, drinking glass',  # 147
    'clock',  # 148
    'flag',  # 149
)

PALETTE: tuple[tuple[int, int, int], ...] = (
    (120, 120, 120), (180, 120, 120), (6, 230, 230), (80, 50, 50), (4, 200, 3), (120, 120, 80),  # 0-5
    (140, 140, 140), (204, 5, 255), (230, 230, 230), (4, 250, 7), (224, 5, 255), (235, 255, 7),  # 6-11
    (150, 5, 61), (120, 120, 70), (8, 255, 51), (255, 6, 82), (143, 255, 140), (204, 255, 4),  # 12-17
    (255, 51, 7), (204, 70, 3), (0, 102, 200), (61, 230, 250), (255, 6, 51), (11, 102, 255),  # 18-23
    (255, 7, 71), (255, 9, 224), (9, 7, 230), (220, 220, 220), (255, 9, 92), (112, 9, 255),  # 24-29
    (8, 255, 214), (7, 255, 224), (255, 184, 6), (10, 255, 71), (255, 41, 10), (7, 255, 255),  # 30-35
    (224, 255, 8), (102, 8, 255), (255, 61, 6), (255, 194, 7), (255, 122, 8), (0, 255, 20),  # 36-41
    (255, 8, 41), (255, 5, 153), (6, 51, 255), (235, 12, 255), (160, 150, 20), (0, 163, 255),  # 42-47
    (140, 140, 140), (250, 10, 15), (20, 255, 0), (31, 255, 0), (255, 31, 0), (255, 224, 0),  # 48-53
    (153, 255, 0), (0, 0, 255), (255, 71, 0), (0, 235, 255), (0, 173, 255), (31, 0, 255),  # 54-59
    (11, 200, 200), (255, 82, 0), (0, 255, 245), (0, 61, 255), (0, 255, 112), (0, 255, 133),  # 60-65
    (255, 0, 0), (255, 163, 0), (255, 102, 0), (194, 255, 0), (0, 143, 255), (51, 255, 0),  # 66-71
    (0, 82, 255), (0, 255, 41), (0, 255, 173), (10, 0, 255), (173, 255, 0), (0, 255, 153),  # 72-77
    (255, 92, 0), (255, 0, 255), (255, 0, 245), (255, 0, 102), (255, 173, 0), (255, 0, 20),  # 78-83
    (255, 184, 184), (0, 31, 255), (0, 255, 61), (0, 71, 255), (255, 0, 204), (0, 255, 194),  # 84-89
    (0, 255, 82), (0, 10, 255), (0, 112, 255), (51, 0, 255), (0, 194, 255), (0, 122, 255),  # 90-95
    (0, 255, 163), (255, 153, 0), (0, 255, 10), (255, 112, 0), (143, 255, 0), (82, 0, 255),  # 96-101
    (163, 255, 0), (255, 235, 0), (8, 184, 170), (133, 0, 255), (0, 255, 92), (184, 0, 255),  # 102-107
    (255, 0, 31), (0, 184, 255), (0, 214, 255), (255, 0, 112), (92, 255, 0), (0, 224, 255),  # 108-113
    (112, 224, 255), (70, 184, 160), (163, 0, 255), (153, 0, 255), (71, 255, 0), (255, 0, 163),  # 114-119
    (255, 204, 0), (255, 0, 143), (0, 255, 235), (133, 255, 0), (255, 0, 235), (245, 0, 255),  # 120-125
    (255, 0, 122), (255, 245, 0), (10, 190, 212), (214, 255, 0), (0, 204, 255), (20, 0, 255),  # 126-131
    (255, 255, 0), (0, 153, 255), (0, 41, 255), (0, 255, 204), (41, 0, 255), (41, 255, 0),  # 132-137
    (173, 0, 255), (0, 245, 255), (71, 0, 255), (122, 0, 255), (0, 255, 184), (0, 92, 255),  # 138-143
    (184, 255, 0), (0, 133, 255), (255, 214, 0), (25, 194, 194), (102, 255, 0), (92, 0, 255),  # 144-149
)


class UnknownClassNameError(UserError, KeyError):
    """A name that is not an ADE20K-150 class name or synonym."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class AmbiguousClassNameError(UserError, KeyError):
    """A synonym shared by several classes, none of which uses it as its short name."""

    def __str__(self) -> str:
        return str(self.args[0])


def _norm(name: str) -> str:
    return " ".join(name.strip().lower().split())


def _split_synonyms(full: str) -> tuple[str, ...]:
    return tuple(_norm(s) for s in full.split(",") if s.strip())


def _build_index() -> tuple[dict[str, int], dict[str, tuple[int, ...]]]:
    exact: dict[str, int] = {}
    shared: dict[str, list[int]] = {}
    for i, short in enumerate(CLASS_NAMES):
        exact[_norm(short)] = i
    for i, full in enumerate(CLASS_SYNONYMS):
        for syn in _split_synonyms(full):
            if syn in exact:
                continue
            ids = shared.setdefault(syn, [])
            if i not in ids:
                ids.append(i)
    unique = {k: v[0] for k, v in shared.items() if len(v) == 1}
    ambiguous = {k: tuple(v) for k, v in shared.items() if len(v) > 1}
    exact.update(unique)
    return exact, ambiguous


_INDEX, _AMBIGUOUS = _build_index()


def class_id(name: str) -> int:
    """ADE20K-150 id (0..149) of a short name or any synonym (case-insensitive).

    Raises UnknownClassNameError (listing close matches) or AmbiguousClassNameError.
    """
    if not isinstance(name, str):
        raise TypeError(f"class_id: expected a class name str, got {type(name).__name__}")
    key = _norm(name)
    if key in _INDEX:
        return _INDEX[key]
    if key in _AMBIGUOUS:
        cands = ", ".join(f"{i} ({CLASS_NAMES[i]})" for i in _AMBIGUOUS[key])
        raise AmbiguousClassNameError(
            f"ADE20K class name {name!r} is a synonym of several classes: {cands}; use the short name"
        )
    pool = sorted(set(_INDEX) | set(_AMBIGUOUS))
    close = difflib.get_close_matches(key, pool, n=5, cutoff=0.6)
    hint = f"; close matches: {', '.join(repr(c) for c in close)}" if close else ""
    raise UnknownClassNameError(f"unknown ADE20K-150 class name {name!r}{hint}")


def class_name(cid: int) -> str:
    """Short display name of id ``cid`` (0..149)."""
    if not 0 <= int(cid) < NUM_CLASSES:
        raise IndexError(f"ADE20K class id {cid} out of range 0..{NUM_CLASSES - 1}")
    return CLASS_NAMES[int(cid)]


def synonyms(cid: int) -> tuple[str, ...]:
    """All synonyms of id ``cid`` from the CSAIL list, in order (first is the CSAIL short name)."""
    if not 0 <= int(cid) < NUM_CLASSES:
        raise IndexError(f"ADE20K class id {cid} out of range 0..{NUM_CLASSES - 1}")
    return tuple(s.strip() for s in CLASS_SYNONYMS[int(cid)].split(","))


_PALETTE_LUT = np.zeros((NUM_CLASSES + 1, 3), dtype=np.uint8)  # row 0: void (-1) -> black
_PALETTE_LUT[1:] = np.asarray(PALETTE, dtype=np.uint8)


def colorize(labels: np.ndarray) -> np.ndarray:
    """Colour an integer label map [H, W] of ADE20K ids (-1 = void) with :data:`PALETTE`.

    Returns uint8 [H, W, 3]; -1 maps to black. Any other value outside -1..149 raises ValueError.
    Works for any leading shape, not only 2-D.
    """
    arr = np.asarray(labels)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"colorize: labels must be an integer array, got dtype {arr.dtype}")
    if arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < -1 or hi >= NUM_CLASSES:
            raise ValueError(f"colorize: labels must lie in -1..{NUM_CLASSES - 1}, got range {lo}..{hi}")
    return _PALETTE_LUT[arr.astype(np.int64) + 1]
