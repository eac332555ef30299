"""The semantic export tests use the extract tests' labelled scene (two chairs, noise, a wall)."""
from tests.extract.conftest import scene  # noqa: F401  (fixture)
