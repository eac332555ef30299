// Python bindings of the CPU rasterizer's C++ operations. Each releases the GIL: the Python worker threads of
// aligngs/render/_threads.py run calls on disjoint tiles in parallel.
#include "ops.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  using release = py::call_guard<py::gil_scoped_release>;
  m.def("bin_tiles", &bin_tiles, "tile-binned (tile, Gaussian) pairs, front to back per tile", release());
  m.def("composite_forward", &composite_forward, "composite tiles (forward)", release());
  m.def("composite_backward", &composite_backward, "composite tiles (backward)", release());
}
