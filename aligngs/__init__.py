"""AlignGS: indoor Gaussian-splatting reconstruction with semantics steering geometry."""
import logging

__version__ = "0.1.0"
logging.getLogger(__name__).addHandler(logging.NullHandler())
