"""The AlignGS wire protocol and result format, in one place (docs/protocol.md).

Pure Python + numpy: no torch, no bpy, no imports from the rest of ``aligngs`` and only relative imports inside,
so ``build_addon.py`` can vendor this folder into the Blender extension unchanged. The server (``backend``), the
reference client (``backend.client``), the pipeline (result folders) and the add-on all use it.

- ``constants``: versions, request / reply / event types, job states, error codes, the dtype allow-list, ``Limits``
- ``errors``:    ``WireError`` (root), ``ProtocolError`` (typed ``error.code``), ``ResultFormatError``
- ``header``:    frame-0 codec, request checks, typed fields
- ``arrays``:    array descriptors and their checks, wire arrays
- ``stream``:    chunk ranges, the result-stream encoder and its one reassembly state machine (``ResultStream``)
- ``results``:   result folders (manifest + .npy) written, read and checked; ``partcheck``: checks by part kind
- ``points``:    the live point preview of a ``progress`` event (``PointsPreview``, encode / decode)
- ``names``:     safe file names, submitted-file name rules; ``jsonio``: strict JSON, atomic writes
"""
from .arrays import ArrayDesc, array_bytes, array_from_frame, describe_array, le_dtype, parse_array_desc, to_wire_array
from .constants import (
    ACTIVE_STATES,
    ALLOWED_DTYPES,
    CHUNK_BYTES,
    DTYPES,
    ERROR_CODES,
    EVENT_TYPES,
    FINAL_STATES,
    JOB_ERROR_CODES,
    JOB_ID_RE,
    JOB_STATES,
    MAX_HEADER_BYTES,
    MAX_SEQ,
    PART_KINDS,
    PROTOCOL_VERSION,
    REPLY_TYPES,
    REQUEST_TYPES,
    RESULTS_VERSION,
    SUPPORTED_RESULTS_VERSIONS,
    SUPPORTED_VERSIONS,
    TYPES_WITH_FRAMES,
    Limits,
)
from .errors import ProtocolError, ResultFormatError, WireError
from .header import (
    Request,
    decode_json_object,
    decode_request,
    encode_header,
    get_field,
    get_job_id,
    message,
    read_seq,
    request,
)
from .jsonio import atomic_open, json_safe, read_json, to_jsonable, write_json_atomic
from .names import (
    ALLOWED_EXTENSIONS,
    BINARY_MODEL_FILES,
    IMAGE_EXTENSIONS,
    TEXT_EXTENSIONS,
    check_content,
    is_image,
    safe_name,
    sanitize_name,
)
from .partcheck import CHECKED_KINDS, check_part
from .points import MAX_PREVIEW_POINTS, POINT_ARRAYS, PointsPreview, decode_points, encode_points
from .results import ResultPart, check_manifest, read_manifest, read_parts, result_folder, write_parts
from .stream import ResultStream, chunk_ranges, encode_result_stream, n_chunks

__all__ = [
    "ACTIVE_STATES",
    "ALLOWED_DTYPES",
    "ALLOWED_EXTENSIONS",
    "ArrayDesc",
    "BINARY_MODEL_FILES",
    "CHECKED_KINDS",
    "CHUNK_BYTES",
    "DTYPES",
    "ERROR_CODES",
    "EVENT_TYPES",
    "FINAL_STATES",
    "IMAGE_EXTENSIONS",
    "JOB_ERROR_CODES",
    "JOB_ID_RE",
    "JOB_STATES",
    "Limits",
    "MAX_HEADER_BYTES",
    "MAX_PREVIEW_POINTS",
    "MAX_SEQ",
    "PART_KINDS",
    "POINT_ARRAYS",
    "PointsPreview",
    "PROTOCOL_VERSION",
    "ProtocolError",
    "REPLY_TYPES",
    "REQUEST_TYPES",
    "RESULTS_VERSION",
    "Request",
    "ResultFormatError",
    "ResultPart",
    "ResultStream",
    "SUPPORTED_RESULTS_VERSIONS",
    "SUPPORTED_VERSIONS",
    "TEXT_EXTENSIONS",
    "TYPES_WITH_FRAMES",
    "WireError",
    "array_bytes",
    "decode_points",
    "encode_points",
    "array_from_frame",
    "atomic_open",
    "check_content",
    "check_manifest",
    "check_part",
    "chunk_ranges",
    "decode_json_object",
    "decode_request",
    "describe_array",
    "encode_header",
    "encode_result_stream",
    "get_field",
    "get_job_id",
    "is_image",
    "json_safe",
    "le_dtype",
    "message",
    "n_chunks",
    "parse_array_desc",
    "read_json",
    "read_manifest",
    "read_parts",
    "read_seq",
    "request",
    "result_folder",
    "safe_name",
    "sanitize_name",
    "to_jsonable",
    "to_wire_array",
    "write_json_atomic",
    "write_parts",
]
