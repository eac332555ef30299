// The training step's photometric loss on the CPU, (1 - lambda) L1 + lambda (1 - SSIM) of an [H, W, C] render
// against its target, with its gradient w.r.t. the render, one band of image rows per call.
//
// SSIM is 3DGS's (aligngs/metrics/image.py: ``ssim``): the normalised 1-D Gaussian window ``window`` (of odd size,
// from the metric's ``gaussian_window``; the 2-D window is its outer product), per channel, zero padding of
// size // 2 (the map has the image's size), C1 = 0.01^2, C2 = 0.03^2, averaged over every pixel and
// channel. The window is applied as two 1-D passes (along W, then along H) of the five maps p, g, p^2, g^2, p g,
// as aligngs/train/trainer.py's torch version does. Each pass is a loop over a contiguous row of W * C values that
// the compiler vectorises.
//
// The gradient, with mu1 = G*p, mu2 = G*g, E11 = G*(p^2), E22 = G*(g^2), E12 = G*(p g) and
// S = A B / (Cm D), A = 2 mu1 mu2 + C1, B = 2 (E12 - mu1 mu2) + C2, Cm = mu1^2 + mu2^2 + C1,
// D = E11 - mu1^2 + E22 - mu2^2 + C2:
//     dS/dmu1 = 2 mu2 (B - A) / (Cm D) - 2 mu1 S (1 / Cm - 1 / D),  dS/dE11 = -S / D,  dS/dE12 = 2 A / (Cm D),
//     d(sum S)/dp(x) = (G * dS/dmu1)(x) + 2 p(x) (G * dS/dE11)(x) + g(x) (G * dS/dE12)(x)
// (the window is symmetric, so the adjoint of a zero-padded pass is the same pass).
//
// A call on rows [r0, r1) also evaluates the SSIM terms on ``radius`` rows either side (the gradient of a row
// reads them), and those from their own horizontal passes ``radius`` rows further out: calls on disjoint bands
// write disjoint rows of the gradient and run on parallel threads (the GIL is released), with no barrier
// between the forward and the backward.

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "ops.h"

namespace {

// out[j] = sum_k w[k] in[j + (k - R) C] over a row of L = W C values, zero outside it. ``padded`` is scratch of
// L + 2 R C values.
template <typename T>
void blur_row(const T* in, T* __restrict out, int64_t L, int64_t C, const std::vector<T>& w,
              std::vector<T>& padded) {
  const int64_t R = int64_t(w.size()) / 2, off = R * C;
  std::fill(padded.begin(), padded.begin() + off, T(0));
  std::copy(in, in + L, padded.begin() + off);
  std::fill(padded.begin() + off + L, padded.end(), T(0));
  const T* __restrict src = padded.data();
  std::fill(out, out + L, T(0));
  for (int64_t k = 0; k < int64_t(w.size()); ++k) {
    const T wk = w[k];
    const T* __restrict s = src + k * C;
    for (int64_t j = 0; j < L; ++j) out[j] += wk * s[j];
  }
}

// Rows [lo, hi) of the vertical pass over the horizontally blurred rows ``h`` (row y at h + (y - h_lo) L, rows
// [h_lo, h_hi) present; rows outside the image count as zero) into out (row y at out + (y - lo) L).
template <typename T>
void blur_columns(const T* h, int64_t h_lo, int64_t h_hi, T* __restrict out, int64_t lo, int64_t hi, int64_t L,
                  const std::vector<T>& w) {
  const int64_t R = int64_t(w.size()) / 2;
  for (int64_t y = lo; y < hi; ++y) {
    T* __restrict o = out + (y - lo) * L;
    std::fill(o, o + L, T(0));
    for (int64_t k = -R; k <= R; ++k) {
      const int64_t yy = y + k;
      if (yy < h_lo || yy >= h_hi) continue;
      const T wk = w[k + R];
      const T* __restrict s = h + (yy - h_lo) * L;
      for (int64_t j = 0; j < L; ++j) o[j] += wk * s[j];
    }
  }
}

// Per-thread scratch, kept between calls up to kKeepBytes: a band's maps take 1-3 MB at 160x120, and fresh
// allocations of that size come from mmap and fault in every page on first touch (it halved this kernel's time).
constexpr size_t kKeepBytes = size_t(64) << 20;

template <typename T>
class Scratch {
 public:
  explicit Scratch(size_t n) : buf_(storage()) {
    if (buf_.size() < n) buf_.resize(n);
  }
  ~Scratch() {
    if (buf_.size() * sizeof(T) > kKeepBytes) std::vector<T>().swap(buf_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  T* data() { return buf_.data(); }

 private:
  static std::vector<T>& storage() {
    thread_local std::vector<T> buf;
    return buf;
  }
  std::vector<T>& buf_;
};

template <typename T>
std::vector<double> photometric_band(const T* p, const T* g, int64_t H, int64_t W, int64_t C, int64_t r0,
                                     int64_t r1, const T* window, int64_t size, T w_l1, T w_ssim, T* grad) {
  const std::vector<T> w(window, window + size);
  const int64_t R = size / 2, L = W * C;
  const T C1 = T(0.01 * 0.01), C2 = T(0.03 * 0.03);
  // rows whose SSIM terms are needed (the gradient of [r0, r1) reads R rows either side), and the rows of their
  // horizontal passes
  const int64_t f_lo = grad ? std::max<int64_t>(0, r0 - R) : r0, f_hi = grad ? std::min(H, r1 + R) : r1;
  const int64_t h_lo = std::max<int64_t>(0, f_lo - R), h_hi = std::min(H, f_hi + R);
  const int64_t nh = h_hi - h_lo, nf = f_hi - f_lo;
  const int64_t nb = r1 - r0;
  std::vector<T> padded(L + 2 * R * C);
  Scratch<T> arena(size_t((5 * nh + (grad ? 11 : 5) * nf + (grad ? 3 * nb : 0) + 2) * L));
  T* const hb = arena.data();
  T* const maps = hb + 5 * nh * L;  // horizontal passes of p, g, p^2, g^2, p g; then their vertical passes
  T* const dmaps = maps + 5 * nf * L;  // dS/dmu1, dS/dE11, dS/dE12 (with the gradient)
  T* const hd = dmaps + (grad ? 3 * nf * L : 0);  // their horizontal passes
  T* const back = hd + (grad ? 3 * nf * L : 0);  // and vertical passes, rows [r0, r1)
  T* const prod = back + (grad ? 3 * nb * L : 0);
  T* const srow = prod + L;
  for (int64_t y = h_lo; y < h_hi; ++y) {
    const T* pr = p + y * L;
    const T* gr = g + y * L;
    T* base = hb + (y - h_lo) * L;
    blur_row(pr, base, L, C, w, padded);
    blur_row(gr, base + nh * L, L, C, w, padded);
    for (int64_t j = 0; j < L; ++j) prod[j] = pr[j] * pr[j];
    blur_row(prod, base + 2 * nh * L, L, C, w, padded);
    for (int64_t j = 0; j < L; ++j) prod[j] = gr[j] * gr[j];
    blur_row(prod, base + 3 * nh * L, L, C, w, padded);
    for (int64_t j = 0; j < L; ++j) prod[j] = pr[j] * gr[j];
    blur_row(prod, base + 4 * nh * L, L, C, w, padded);
  }
  for (int m = 0; m < 5; ++m)  // mu1, mu2, E11, E22, E12 on rows [f_lo, f_hi)
    blur_columns(hb + m * nh * L, h_lo, h_hi, maps + m * nf * L, f_lo, f_hi, L, w);
  double l1 = 0, ssim = 0;
  for (int64_t y = r0; y < r1; ++y)
    for (int64_t j = 0; j < L; ++j) l1 += std::abs(double(p[y * L + j]) - double(g[y * L + j]));
  // the SSIM map (summed over [r0, r1)) and, for the gradient, its derivatives on rows [f_lo, f_hi)
  const T* mu1 = maps;
  const T* mu2 = mu1 + nf * L;
  const T* e11 = mu2 + nf * L;
  const T* e22 = e11 + nf * L;
  const T* e12 = e22 + nf * L;
  for (int64_t y = f_lo; y < f_hi; ++y) {
    const int64_t o = (y - f_lo) * L;
    const T* __restrict a1 = mu1 + o;
    const T* __restrict a2 = mu2 + o;
    const T* __restrict b11 = e11 + o;
    const T* __restrict b22 = e22 + o;
    const T* __restrict b12 = e12 + o;
    T* __restrict s_out = srow;
    T* __restrict d1 = grad ? dmaps + o : nullptr;
    T* __restrict d2 = grad ? d1 + nf * L : nullptr;
    T* __restrict d3 = grad ? d2 + nf * L : nullptr;
    if (grad) {
      for (int64_t j = 0; j < L; ++j) {
        const T m1 = a1[j], m2 = a2[j];
        const T A = 2 * m1 * m2 + C1, B = 2 * (b12[j] - m1 * m2) + C2;
        const T Cm = m1 * m1 + m2 * m2 + C1, D = (b11[j] - m1 * m1) + (b22[j] - m2 * m2) + C2;
        const T inv_c = T(1) / Cm, inv_d = T(1) / D, inv_cd = inv_c * inv_d;
        const T S = A * B * inv_cd;
        s_out[j] = S;
        d1[j] = 2 * m2 * (B - A) * inv_cd - 2 * m1 * S * (inv_c - inv_d);
        d2[j] = -S * inv_d;
        d3[j] = 2 * A * inv_cd;
      }
    } else {
      for (int64_t j = 0; j < L; ++j) {
        const T m1 = a1[j], m2 = a2[j];
        const T A = 2 * m1 * m2 + C1, B = 2 * (b12[j] - m1 * m2) + C2;
        const T Cm = m1 * m1 + m2 * m2 + C1, D = (b11[j] - m1 * m1) + (b22[j] - m2 * m2) + C2;
        s_out[j] = (A * B) / (Cm * D);
      }
    }
    if (y >= r0 && y < r1)
      for (int64_t j = 0; j < L; ++j) ssim += double(s_out[j]);
  }
  if (grad) {
    for (int m = 0; m < 3; ++m) {
      for (int64_t y = f_lo; y < f_hi; ++y)
        blur_row(dmaps + m * nf * L + (y - f_lo) * L, hd + m * nf * L + (y - f_lo) * L, L, C, w, padded);
      blur_columns(hd + m * nf * L, f_lo, f_hi, back + m * nb * L, r0, r1, L, w);
    }
    const int64_t n = nb * L;
    const T* b1 = back;
    const T* b2 = b1 + n;
    const T* b3 = b2 + n;
    const T* pr = p + r0 * L;
    const T* gr = g + r0 * L;
    T* out = grad + r0 * L;
    for (int64_t i = 0; i < n; ++i) {
      const T d = pr[i] - gr[i];
      const T sign = T(d > 0) - T(d < 0);
      out[i] = w_l1 * sign + w_ssim * (b1[i] + 2 * pr[i] * b2[i] + gr[i] * b3[i]);
    }
  }
  return {l1, ssim};
}

}  // namespace

std::vector<double> photometric_rows(const torch::Tensor& pred, const torch::Tensor& gt, int64_t row_start,
                                     int64_t row_count, const torch::Tensor& window, double w_l1, double w_ssim,
                                     const c10::optional<torch::Tensor>& grad) {
  const char* op = "photometric_rows";
  check_cpu(pred, op);
  check_cpu(gt, op);
  TORCH_CHECK(pred.dim() == 3 && gt.sizes() == pred.sizes(), op, ": pred and gt must be [H, W, C] of one shape, got ",
              pred.sizes(), " and ", gt.sizes());
  TORCH_CHECK(gt.scalar_type() == pred.scalar_type(), op, ": gt must have pred's dtype");
  check_cpu(window, op);
  TORCH_CHECK(window.dim() == 1 && window.size(0) % 2 == 1 && window.scalar_type() == pred.scalar_type() &&
                  window.is_contiguous(),
              op, ": window must be a contiguous 1-D tensor of odd length in pred's dtype, got ", window.sizes(), " ",
              window.scalar_type());
  const int64_t H = pred.size(0), W = pred.size(1), C = pred.size(2);
  TORCH_CHECK(0 <= row_start && 0 <= row_count && row_start + row_count <= H, op, ": rows [", row_start, ", ",
              row_start + row_count, ") outside the image's ", H);
  if (grad) {
    check_cpu(*grad, op);
    TORCH_CHECK(grad->sizes() == pred.sizes() && grad->scalar_type() == pred.scalar_type(), op,
                ": grad must be [H, W, C] of pred's dtype");
  }
  std::vector<double> out;
  AT_DISPATCH_FLOATING_TYPES(pred.scalar_type(), "photometric_rows", [&] {
    out = photometric_band<scalar_t>(pred.data_ptr<scalar_t>(), gt.data_ptr<scalar_t>(), H, W, C, row_start,
                                     row_start + row_count, window.data_ptr<scalar_t>(), window.size(0),
                                     scalar_t(w_l1), scalar_t(w_ssim),
                                     grad ? grad->data_ptr<scalar_t>() : nullptr);
  });
  return out;
}
