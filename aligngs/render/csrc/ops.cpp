// Python bindings of the CPU rasterizer's C++ operations (and the training step's photometric loss). Each releases the GIL: the Python worker threads of
// aligngs/render/_threads.py run calls on disjoint tiles in parallel.
#include "ops.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  using release = py::call_guard<py::gil_scoped_release>;
  m.def("bin_tiles", &bin_tiles, "tile-binned (tile, Gaussian) pairs, front to back per tile", release());
  m.def("composite_forward", &composite_forward, "composite tiles (forward)", release());
  m.def("composite_backward", &composite_backward, "composite tiles (backward)", release());
  m.def("scatter_add_rows", &scatter_add_rows, "out[index[k]] += src[k], in order", release());
  m.def("project_forward", &project_forward, "EWA projection of a range of Gaussians (forward)", release());
  m.def("project_backward", &project_backward, "EWA projection of a range of Gaussians (backward)", release());
  m.def("sh_forward", &sh_forward, "SH colours of a range of Gaussians (forward)", release());
  m.def("sh_backward", &sh_backward, "SH colours of a range of Gaussians (backward)", release());
  m.def("photometric_rows", &photometric_rows, "L1 and SSIM sums of a band of image rows, and their gradient",
        release());
}
