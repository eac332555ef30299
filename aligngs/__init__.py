"""AlignGS: indoor Gaussian-splatting reconstruction with semantics steering geometry."""
import logging
import os
import sys

__version__ = "0.1.0"
logging.getLogger(__name__).addHandler(logging.NullHandler())

# torch's OpenMP runtime (libgomp) keeps its idle threads spinning after every parallel op unless told otherwise.
# The CPU trainer runs its rasterizer on its own worker threads between such ops (SSIM, Adam, activations), and
# the spinning threads took the cores from them: 15% of a training run's CPU samples were libgomp spin-waits, and
# a 60k-Gaussian shelf-rgbd step took 134 ms with the default policy against 112 ms with PASSIVE (same process,
# quiet machine). libgomp reads the variable once, when torch loads it, so it only applies when aligngs is
# imported before torch (the CLI, the backend, the benchmarks); a value the user set is kept.
if "torch" not in sys.modules:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
