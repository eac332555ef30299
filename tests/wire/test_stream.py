"""The result stream: what ``encode_result_stream`` sends, ``ResultStream`` rebuilds byte for byte, and every
inconsistency is a ProtocolError (never another exception)."""
from __future__ import annotations

import numpy as np
import pytest

from aligngs.wire import (ProtocolError, ResultPart, ResultStream, chunk_ranges, decode_json_object,
                          encode_result_stream, n_chunks, to_wire_array)


def _parts(rng):
    return [
        ResultPart("mesh", "mesh", {"vertices": rng.normal(size=(700, 3)).astype(np.float32),
                                    "faces": rng.integers(0, 700, (300, 3)).astype(np.int32)}),
        ResultPart("empty", "extra", {"none": np.zeros((0, 4), np.int16), "scalar": np.array(2.5)}, {"k": [1, 2]}),
        ResultPart("exact", "extra", {"x": np.arange(1000, dtype=np.uint8)}),  # exactly one chunk's size: inline
    ]


def _messages(parts, chunk_bytes):
    msgs = list(encode_result_stream("jobid", 5, parts, scene="s", up=[0.0, 1.0, 0.0], version=1,
                                     chunk_bytes=chunk_bytes))
    return [(decode_json_object(m[0]), [bytes(f) for f in m[1:]]) for m in msgs]


def test_chunk_ranges_and_counts():
    assert chunk_ranges(2500, 1000) == [(0, 1000), (1000, 1000), (2000, 500)]
    assert chunk_ranges(0, 1000) == [(0, 0)] and n_chunks(0, 1000) == 1
    assert [n_chunks(t, 1000) for t in (1, 999, 1000, 1001, 3000)] == [1, 1, 1, 2, 3]


@pytest.mark.parametrize("chunk_bytes", [1000, 1 << 20])
def test_round_trip(chunk_bytes):
    parts = _parts(np.random.default_rng(1))
    msgs = _messages([ResultPart(p.name, p.kind, {k: to_wire_array(a) for k, a in p.arrays.items()}, p.meta)
                      for p in parts], chunk_bytes)
    st = ResultStream("jobid")
    done = []
    for h, frames in msgs:
        got = st.feed(h, frames)
        if got is not None:
            done.append(got.name)
    assert done == ["mesh", "empty", "exact"] and not st.finished
    st.feed({"type": "done", "job": "jobid"})
    assert st.finished and st.n_parts == 3 and st.manifest["up"] == [0.0, 1.0, 0.0]
    assert st.received == st.nbytes == sum(p.nbytes() for p in parts)
    assert [p["name"] for p in st.manifest["parts"]] == ["mesh", "empty", "exact"]
    for want, got in zip(parts, st.parts):
        assert list(got.arrays) == list(want.arrays) and got.meta == want.meta
        for k, a in want.arrays.items():
            assert got.arrays[k].dtype == a.dtype and got.arrays[k].shape == a.shape
            assert got.arrays[k].tobytes() == a.tobytes()
    chunks = [h for h, _ in msgs if h["type"] == "chunk"]
    if chunk_bytes == 1000:  # vertices 8400 B -> 9 chunks, faces 3600 B -> 4; 'exact' (1000 B) stays inline
        assert [(h["array"], h["index"], h["count"]) for h in chunks][::4] == [
            ("vertices", 0, 9), ("vertices", 4, 9), ("vertices", 8, 9), ("faces", 3, 4)]
        assert [h for h, _ in msgs if h["type"] == "part"][2]["arrays"][0]["frame"] == 1
    else:
        assert chunks == []


def _broken(chunk_bytes=1000):
    return _messages(_parts(np.random.default_rng(2)), chunk_bytes)


@pytest.mark.parametrize("edit", [
    lambda m: m.pop(1),                                              # a part's header lost: chunk outside a part
    lambda m: m.__setitem__(2, (dict(m[2][0], index=1), m[2][1])),   # chunk out of order
    lambda m: m.__setitem__(2, (dict(m[2][0], offset=1), m[2][1])),  # wrong offset
    lambda m: m.__setitem__(2, (m[2][0], [m[2][1][0][:-1]])),        # short frame
    lambda m: m.__setitem__(2, (m[2][0], m[2][1] * 2)),              # two frames on a chunk
    lambda m: m.__setitem__(2, (dict(m[2][0], total=1), m[2][1])),   # wrong total
    lambda m: m.__setitem__(1, (dict(m[1][0], index=3), m[1][1])),   # part index skipped
    lambda m: m.__setitem__(0, (dict(m[0][0], parts=-1), [])),       # bad part count
    lambda m: m.insert(0, m[0]),                                     # a second 'result'
])
def test_inconsistent_streams_raise_protocol_errors(edit):
    msgs = _broken()
    edit(msgs)
    st = ResultStream("j")
    with pytest.raises(ProtocolError):
        for h, frames in msgs:
            st.feed(h, frames)
        st.feed({"type": "done"})


def test_done_before_the_last_part_and_messages_after_done():
    msgs = _broken(1 << 20)
    st = ResultStream("j")
    for h, frames in msgs[:-1]:
        st.feed(h, frames)
    with pytest.raises(ProtocolError, match="done before all parts"):
        st.feed({"type": "done"})
    st = ResultStream("j")
    for h, frames in msgs:
        st.feed(h, frames)
    st.feed({"type": "done"})
    with pytest.raises(ProtocolError, match="after done"):
        st.feed(*msgs[1])


def test_inline_frame_length_and_descriptor_checked():
    h, frames = _broken(1 << 20)[1]
    st = ResultStream("j")
    st.feed(*_broken(1 << 20)[0])
    with pytest.raises(ProtocolError, match="frame has"):
        st.feed(h, [frames[0][:-4], frames[1]])
    bad = dict(h, arrays=[dict(h["arrays"][0], dtype="object")])
    with pytest.raises(ProtocolError, match="dtype"):
        st.feed(bad, frames)  # (the failed part left the stream waiting for part 0)
