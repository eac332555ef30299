"""Result parts (manifest.json + .npy arrays): the format lives in ``aligngs.wire.results`` (shared with the
backend and the Blender add-on); these names stay importable from here."""
from aligngs.wire.constants import ALLOWED_DTYPES, RESULTS_VERSION  # noqa: F401
from aligngs.wire.results import ResultPart, read_manifest, read_parts, write_parts  # noqa: F401
