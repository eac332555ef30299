// The CPU rasterizer's C++ operations (one extension module, bound in ops.cpp).
#pragma once

#include <torch/extension.h>

#include <vector>

inline void check_cpu(const torch::Tensor& t, const char* op) {
  TORCH_CHECK(t.device().is_cpu() && t.is_contiguous(), op, ": inputs must be contiguous CPU tensors");
}

// tiles.cpp
std::vector<torch::Tensor> bin_tiles(const torch::Tensor& means2d, const torch::Tensor& radii,
                                     const torch::Tensor& depths, const torch::Tensor& conics,
                                     const torch::Tensor& opacities, int64_t width, int64_t height,
                                     int64_t tile_size);

// composite.cpp
void composite_forward(const torch::Tensor& table, const torch::Tensor& colors, const torch::Tensor& gauss,
                       const torch::Tensor& color, const torch::Tensor& starts, const torch::Tensor& counts,
                       const torch::Tensor& tiles, const c10::optional<torch::Tensor>& bg, torch::Tensor img,
                       torch::Tensor tf, int64_t tiles_per_image, int64_t tile_width, int64_t tile_size,
                       double log_floor, double log_max, double alpha_cut, double t_eps);
void composite_backward(const torch::Tensor& table, const torch::Tensor& colors, const torch::Tensor& gauss,
                        const torch::Tensor& color, const torch::Tensor& starts, const torch::Tensor& counts,
                        const torch::Tensor& tiles, const torch::Tensor& grad, const torch::Tensor& rest,
                        torch::Tensor d_pairs, const c10::optional<torch::Tensor>& d_pair_colors,
                        int64_t tiles_per_image, int64_t tile_width, int64_t tile_size, double log_floor,
                        double log_max, double alpha_cut, double t_eps);
