// The CPU rasterizer's C++ operations, and the training step's photometric loss (one extension module, bound in
// ops.cpp).
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
                                     int64_t tile_size, int64_t workers);

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
void scatter_add_rows(const torch::Tensor& src, const torch::Tensor& index, torch::Tensor out);

// project.cpp: the Gaussians [start, start + count) of every camera
void project_forward(const torch::Tensor& means, const torch::Tensor& quats, const torch::Tensor& scales,
                     const torch::Tensor& opacities, const torch::Tensor& viewmats, const torch::Tensor& Ks,
                     int64_t start, int64_t count, int64_t width, int64_t height, double eps2d, double near_plane,
                     double far_plane, double radius_clip, bool antialiased, torch::Tensor means2d,
                     torch::Tensor conics, torch::Tensor depths, torch::Tensor opac_out, torch::Tensor radii);
void project_backward(const torch::Tensor& means, const torch::Tensor& quats, const torch::Tensor& scales,
                      const torch::Tensor& opacities, const torch::Tensor& viewmats, const torch::Tensor& Ks,
                      int64_t start, int64_t count, int64_t width, int64_t height, double eps2d, bool antialiased,
                      const c10::optional<torch::Tensor>& g_means2d, const c10::optional<torch::Tensor>& g_conics,
                      const c10::optional<torch::Tensor>& g_depths, const c10::optional<torch::Tensor>& g_opac,
                      torch::Tensor d_means, torch::Tensor d_quats, torch::Tensor d_scales, torch::Tensor d_opac);
void sh_forward(int64_t degree, const torch::Tensor& means, const torch::Tensor& coeffs, const torch::Tensor& viewmats,
                int64_t start, int64_t count, torch::Tensor colors);
void sh_backward(int64_t degree, const torch::Tensor& means, const torch::Tensor& coeffs,
                 const torch::Tensor& viewmats, int64_t start, int64_t count, const torch::Tensor& g_colors,
                 torch::Tensor d_means, torch::Tensor d_coeffs);

// photometric.cpp: (1 - lambda) L1 + lambda (1 - SSIM) of [H, W, C] images, rows [row_start, row_start + row_count):
// returns (sum |pred - gt|, sum SSIM) over those rows and, with ``grad``, writes its rows of
// w_l1 d(sum |pred - gt|)/d pred + w_ssim d(sum SSIM)/d pred
std::vector<double> photometric_rows(const torch::Tensor& pred, const torch::Tensor& gt, int64_t row_start,
                                     int64_t row_count, const torch::Tensor& window, double w_l1, double w_ssim,
                                     const c10::optional<torch::Tensor>& grad);
