// Per-pixel front-to-back compositing of tile-binned Gaussians on the CPU, forward and backward.
//
// The same math as the pure-torch kernels of aligngs/render/_composite.py (gsplat 1.5.3's rules): per
// (tile, Gaussian) pair the log-alpha over the tile's pixels is the quadratic
//     k0 + k1 u + k2 v + k3 u^2 + k4 u v + k5 v^2      (u, v: pixel offset from the tile centre)
// whose coefficients this kernel computes from the Gaussian's projected mean, conic and opacity as it goes (the
// torch kernels take them precomputed: _composite._PairCoefficients, same formulas), and whose backward it turns
// into the gradient of those six per-pair quantities.
// clamped to [LOG_FLOOR, LOG_MAX_ALPHA]; alpha = exp(.), pairs with alpha < 1/255 are skipped, a Gaussian
// whose inclusion would take the transmittance to <= 1e-4 ends the pixel (exclusive).
//
// Where the dense torch kernels evaluate every pixel of every pair (~78% of them below 1/255 on a trained
// indoor scene), this loop tests the log-alpha first and only exponentiates, blends and differentiates the
// pairs that count. Each call handles a list of tiles; a pair belongs to exactly one tile, so calls on
// disjoint tile lists write disjoint memory and run on parallel threads (the GIL is released).

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/extension.h>

#include <algorithm>
#include <initializer_list>
#include <cmath>
#include <limits>
#include <vector>

#include "ops.h"

namespace {

struct Geometry {
  int64_t tiles_per_image, tile_width, tile_size, img_h, img_w;  // padded image (whole tiles)
};

template <typename scalar_t>
struct Rules {
  scalar_t log_floor, log_max, alpha_cut, t_eps, log_skip;
};

// Per-call scratch: the pixel offsets of a tile and the per-pixel state, reused across its tiles.
template <typename scalar_t>
struct Tile {
  int64_t P;
  std::vector<scalar_t> u, v, logit, T;
  std::vector<char> alive;
  std::vector<int32_t> cand;  // pixels of the current pair whose log-alpha reaches the skip bound
  explicit Tile(int64_t ts) : P(ts * ts), u(P), v(P), logit(P), T(P), alive(P), cand(P) {
    const scalar_t c = scalar_t(ts - 1) / 2;
    for (int64_t p = 0; p < P; ++p) {
      u[p] = scalar_t(p % ts) - c;
      v[p] = scalar_t(p / ts) - c;
    }
  }
  // The log-alphas of pair k over the tile's pixels, in a loop the compiler vectorises (k copied to locals and
  // restrict pointers, or the stores to ``logit`` would be assumed to alias the coefficients); then the pixels
  // at or above ``skip`` are listed in ``cand`` without branches. Returns their number.
  int64_t evaluate(const scalar_t* k, scalar_t skip) {
    const scalar_t k0 = k[0], k1 = k[1], k2 = k[2], k3 = k[3], k4 = k[4], k5 = k[5];
    const scalar_t* __restrict pu = u.data();
    const scalar_t* __restrict pv = v.data();
    scalar_t* __restrict out = logit.data();
    for (int64_t p = 0; p < P; ++p) {
      const scalar_t x = pu[p], y = pv[p];
      out[p] = k0 + x * (k1 + k3 * x + k4 * y) + y * (k2 + k5 * y);
    }
    int32_t* __restrict c = cand.data();
    int64_t n = 0;
    for (int64_t p = 0; p < P; ++p) {
      c[n] = int32_t(p);
      n += out[p] >= skip;
    }
    return n;
  }
};

// Pairs of a tile are visited front to back, each over all the tile's pixels: the log-alpha of the 64 pixels is
// one vectorised pass, and only the pixels where it reaches log(1/255) go on to the exp and the blending.
// ``visit(i, p, a, T, unclamped)`` is called for every composited (pair, pixel), front to back per pixel.
// A pair's quadratic from its Gaussian's row (mean x, y, conic a, b, c, opacity) and the tile centre (xc, yc):
// with d = mean - centre, k1 = a dx + b dy, k2 = b dx + c dy, k0 = log(o) - (dx k1 + dy k2) / 2,
// (k3, k4, k5) = (-a / 2, -b, -c / 2).
template <typename scalar_t>
struct PairQuadratic {
  scalar_t dx, dy, k[6];
  PairQuadratic(const scalar_t* g, scalar_t xc, scalar_t yc) : dx(g[0] - xc), dy(g[1] - yc) {
    k[1] = g[2] * dx + g[3] * dy;
    k[2] = g[3] * dx + g[4] * dy;
    k[0] = std::log(g[5]) - scalar_t(0.5) * (dx * k[1] + dy * k[2]);
    k[3] = scalar_t(-0.5) * g[2];
    k[4] = -g[3];
    k[5] = scalar_t(-0.5) * g[4];
  }
  // d(loss)/d(mean x, y, conic a, b, c, opacity) from d(loss)/dk
  void backward(const scalar_t* g, const scalar_t* dk, scalar_t* out) const {
    const scalar_t d0 = dk[0], d1 = dk[1], d2 = dk[2];
    out[0] += d1 * g[2] + d2 * g[3] - d0 * k[1];
    out[1] += d1 * g[3] + d2 * g[4] - d0 * k[2];
    out[2] += d1 * dx - scalar_t(0.5) * d0 * dx * dx - scalar_t(0.5) * dk[3];
    out[3] += d1 * dy + d2 * dx - d0 * dx * dy - dk[4];
    out[4] += d2 * dy - scalar_t(0.5) * d0 * dy * dy - scalar_t(0.5) * dk[5];
    out[5] += d0 / g[5];
  }
};

struct Pairs {  // the tile-binned pairs: Gaussian row and colour row of each, and each tile's range
  const int64_t *gauss, *color, *starts, *counts;
};

template <typename scalar_t>
void tile_centre(int64_t tile, const Geometry& g, scalar_t& xc, scalar_t& yc) {
  const int64_t local = tile % g.tiles_per_image;
  const scalar_t ts = scalar_t(g.tile_size);
  xc = scalar_t(local % g.tile_width) * ts + scalar_t(0.5) * ts;
  yc = scalar_t(local / g.tile_width) * ts + scalar_t(0.5) * ts;
}

template <typename scalar_t, typename Visit>
void composite_tile(const scalar_t* table, const Pairs& pr, int64_t tile, const Geometry& g,
                    const Rules<scalar_t>& r, Tile<scalar_t>& tl, Visit&& visit) {
  const int64_t start = pr.starts[tile], count = pr.counts[tile];
  scalar_t xc, yc;
  tile_centre(tile, g, xc, yc);
  std::fill(tl.T.begin(), tl.T.end(), scalar_t(1));
  std::fill(tl.alive.begin(), tl.alive.end(), char(1));
  int64_t n_alive = tl.P;
  const scalar_t* __restrict logit = tl.logit.data();
  scalar_t* __restrict trans = tl.T.data();
  char* __restrict alive = tl.alive.data();
  for (int64_t j = 0; j < count && n_alive > 0; ++j) {
    const int64_t i = start + j;
    const PairQuadratic<scalar_t> quad(table + 6 * pr.gauss[i], xc, yc);
    const int64_t n = tl.evaluate(quad.k, r.log_skip);  // the others have alpha < 1/255 for sure
    for (int64_t q = 0; q < n; ++q) {
      const int64_t p = tl.cand[q];
      if (!alive[p]) continue;  // the pixel has ended
      scalar_t l = logit[p];
      const bool unclamped = l < r.log_max;
      l = std::min(std::max(l, r.log_floor), r.log_max);
      const scalar_t a = std::exp(l);
      if (a < r.alpha_cut) continue;
      const scalar_t T = trans[p];
      const scalar_t next = T * (1 - a);
      if (next <= r.t_eps) {  // this Gaussian would end the pixel: it and everything behind it are left out
        alive[p] = 0;
        --n_alive;
        continue;
      }
      visit(i, p, a, T, unclamped);
      trans[p] = next;
    }
  }
}

inline int64_t pixel_index(int64_t tile, int64_t p, const Geometry& g) {
  const int64_t cam = tile / g.tiles_per_image, local = tile % g.tiles_per_image;
  const int64_t ty = local / g.tile_width, tx = local % g.tile_width;
  const int64_t ts = g.tile_size;
  return (cam * g.img_h + ty * ts + p / ts) * g.img_w + tx * ts + p % ts;
}

template <typename scalar_t>
void forward_tiles(const scalar_t* table, const scalar_t* colors, const Pairs& pr, const int64_t* tiles,
                   int64_t n_tiles, const scalar_t* bg, int64_t D, const Geometry& g, const Rules<scalar_t>& r,
                   scalar_t* img, scalar_t* tf) {
  Tile<scalar_t> tl(g.tile_size);
  std::vector<scalar_t> acc(tl.P * D);
  for (int64_t t = 0; t < n_tiles; ++t) {
    const int64_t tile = tiles[t];
    std::fill(acc.begin(), acc.end(), scalar_t(0));
    composite_tile(table, pr, tile, g, r, tl,
                   [&](int64_t i, int64_t p, scalar_t a, scalar_t T, bool) {
                     const scalar_t w = T * a;
                     const scalar_t* col = colors + pr.color[i] * D;
                     scalar_t* out = acc.data() + p * D;
                     for (int64_t d = 0; d < D; ++d) out[d] += w * col[d];
                   });
    const int64_t cam = tile / g.tiles_per_image;
    for (int64_t p = 0; p < tl.P; ++p) {
      const int64_t pix = pixel_index(tile, p, g);
      const scalar_t T = tl.T[p];
      for (int64_t d = 0; d < D; ++d) img[pix * D + d] = acc[p * D + d] + (bg ? T * bg[cam * D + d] : scalar_t(0));
      tf[pix] = T;
    }
  }
}

template <typename scalar_t>
struct Hit {
  int64_t pair;
  int32_t pixel;
  scalar_t alpha, T;
  bool unclamped;
};

template <typename scalar_t>
void backward_tiles(const scalar_t* table, const scalar_t* colors, const Pairs& pr, const int64_t* tiles,
                    int64_t n_tiles, int64_t D, const Geometry& g, const Rules<scalar_t>& r, const scalar_t* grad,
                    const scalar_t* rest, scalar_t* d_pairs, scalar_t* d_pair_colors) {
  Tile<scalar_t> tl(g.tile_size);
  std::vector<Hit<scalar_t>> hits;
  std::vector<scalar_t> suffix(tl.P), gpix(tl.P * D), dc_local(D);
  for (int64_t t = 0; t < n_tiles; ++t) {
    const int64_t tile = tiles[t];
    hits.clear();
    scalar_t xc, yc;
    tile_centre(tile, g, xc, yc);
    // this call owns the tile's pairs: their gradient rows start at 0 here (no zero-filled buffers to allocate)
    std::fill(d_pairs + 6 * pr.starts[tile], d_pairs + 6 * (pr.starts[tile] + pr.counts[tile]), scalar_t(0));
    if (d_pair_colors)
      std::fill(d_pair_colors + D * pr.starts[tile], d_pair_colors + D * (pr.starts[tile] + pr.counts[tile]),
                scalar_t(0));
    composite_tile(table, pr, tile, g, r, tl,
                   [&](int64_t i, int64_t p, scalar_t a, scalar_t T, bool unclamped) {
                     hits.push_back({i, int32_t(p), a, T, unclamped});
                   });
    for (int64_t p = 0; p < tl.P; ++p) {
      const int64_t pix = pixel_index(tile, p, g);
      suffix[p] = rest[pix];  // T_final (bg . g - g_alpha)
      for (int64_t d = 0; d < D; ++d) gpix[p * D + d] = grad[pix * D + d];
    }
    // back to front per pixel: suffix = sum over the later composited pairs of w_j (c_j . g) + T_final (...).
    // The hits come grouped by pair, so each pair's gradient is summed in locals and written once.
    scalar_t dk[6] = {0, 0, 0, 0, 0, 0};
    std::vector<scalar_t>& dc = dc_local;
    std::fill(dc.begin(), dc.end(), scalar_t(0));
    int64_t cur = -1;
    auto flush = [&]() {
      if (cur < 0) return;
      const scalar_t* row = table + 6 * pr.gauss[cur];
      PairQuadratic<scalar_t>(row, xc, yc).backward(row, dk, d_pairs + 6 * cur);
      std::fill(dk, dk + 6, scalar_t(0));
      if (d_pair_colors) {
        scalar_t* oc = d_pair_colors + cur * D;
        for (int64_t d = 0; d < D; ++d) {
          oc[d] += dc[d];
          dc[d] = 0;
        }
      }
    };
    for (auto h = hits.rbegin(); h != hits.rend(); ++h) {
      if (h->pair != cur) {
        flush();
        cur = h->pair;
      }
      const scalar_t* col = colors + pr.color[h->pair] * D;
      const scalar_t* gp = gpix.data() + h->pixel * D;
      scalar_t cg = 0;
      for (int64_t d = 0; d < D; ++d) cg += col[d] * gp[d];
      const scalar_t w = h->T * h->alpha;
      if (h->unclamped) {
        const scalar_t d_logit = h->alpha * (h->T * cg - suffix[h->pixel] / (1 - h->alpha));
        const scalar_t u = tl.u[h->pixel], v = tl.v[h->pixel];
        dk[0] += d_logit;
        dk[1] += d_logit * u;
        dk[2] += d_logit * v;
        dk[3] += d_logit * u * u;
        dk[4] += d_logit * u * v;
        dk[5] += d_logit * v * v;
      }
      for (int64_t d = 0; d < D; ++d) dc[d] += w * gp[d];
      suffix[h->pixel] += w * cg;
    }
    flush();
  }
}

template <typename scalar_t>
Rules<scalar_t> rules(double log_floor, double log_max, double alpha_cut, double t_eps) {
  // below log(alpha_cut) - margin the alpha is below the cut whatever the rounding of exp
  return {scalar_t(log_floor), scalar_t(log_max), scalar_t(alpha_cut), scalar_t(t_eps),
          scalar_t(std::log(alpha_cut) - 1e-3)};
}

Geometry geometry(const torch::Tensor& img, int64_t tiles_per_image, int64_t tile_width, int64_t tile_size) {
  return {tiles_per_image, tile_width, tile_size, img.size(1), img.size(2)};
}

Pairs pairs(const torch::Tensor& gauss, const torch::Tensor& color, const torch::Tensor& starts,
            const torch::Tensor& counts) {
  for (const torch::Tensor* t : {&gauss, &color, &starts, &counts}) {
    check_cpu(*t, "composite");
    TORCH_CHECK(t->scalar_type() == torch::kInt64, "composite: pair indices must be int64");
  }
  return {gauss.data_ptr<int64_t>(), color.data_ptr<int64_t>(), starts.data_ptr<int64_t>(), counts.data_ptr<int64_t>()};
}

// The arrays' sizes against each other (a mismatch would read or write past them; the index values come from the
// tile plan and are not re-checked per pair): table [R, 6], colors [Rc, D], gauss / color [M], starts / counts /
// the per-tile arrays over C * tiles_per_image tiles, images [C, tile rows * ts, tile_width * ts(, D)].
void check_sizes(const char* op, const torch::Tensor& table, const torch::Tensor& colors, const torch::Tensor& gauss,
                 const torch::Tensor& color, const torch::Tensor& starts, const torch::Tensor& counts,
                 const torch::Tensor& tiles, const torch::Tensor& img, const torch::Tensor& tf,
                 int64_t tiles_per_image, int64_t tile_width, int64_t tile_size) {
  TORCH_CHECK(table.dim() == 2 && table.size(1) == 6 && colors.dim() == 2, op,
              ": table must be [R, 6] and colors [Rc, D]");
  TORCH_CHECK(colors.scalar_type() == table.scalar_type() && img.scalar_type() == table.scalar_type() &&
                  tf.scalar_type() == table.scalar_type(), op, ": table, colors and images must share a dtype");
  TORCH_CHECK(gauss.numel() == color.numel(), op, ": one table row and one colour row per pair");
  TORCH_CHECK(tiles.scalar_type() == torch::kInt64, op, ": tiles must be int64");
  TORCH_CHECK(tile_size > 0 && tile_width > 0 && tiles_per_image > 0 && tiles_per_image % tile_width == 0, op,
              ": tile grid must be positive and whole");
  const int64_t C = img.size(0), D = colors.size(1);
  TORCH_CHECK(starts.numel() == C * tiles_per_image && counts.numel() == C * tiles_per_image, op,
              ": starts and counts must cover the C x ", tiles_per_image, " tiles");
  TORCH_CHECK(img.dim() == 4 && img.size(1) == tiles_per_image / tile_width * tile_size &&
                  img.size(2) == tile_width * tile_size && img.size(3) == D, op,
              ": image must be [C, tile rows x tile size, tile columns x tile size, D]");
  TORCH_CHECK(tf.numel() == C * img.size(1) * img.size(2), op, ": per-pixel map must be [C, H, W] like the image");
}

}  // namespace

// img [C, Hp, Wp, D] and tf [C, Hp, Wp] are written for the pixels of ``tiles``. table [R, 6]: per projected
// Gaussian (mean x, y, conic a, b, c, opacity); gauss / color: each pair's row of table / colors.
void composite_forward(const torch::Tensor& table, const torch::Tensor& colors, const torch::Tensor& gauss,
                       const torch::Tensor& color, const torch::Tensor& starts, const torch::Tensor& counts,
                       const torch::Tensor& tiles, const c10::optional<torch::Tensor>& bg, torch::Tensor img,
                       torch::Tensor tf, int64_t tiles_per_image, int64_t tile_width, int64_t tile_size,
                       double log_floor, double log_max, double alpha_cut, double t_eps) {
  for (const torch::Tensor* t : std::initializer_list<const torch::Tensor*>{&table, &colors, &tiles, &img, &tf}) check_cpu(*t, "composite_forward");
  const Pairs pr = pairs(gauss, color, starts, counts);
  check_sizes("composite_forward", table, colors, gauss, color, starts, counts, tiles, img, tf, tiles_per_image,
              tile_width, tile_size);
  if (bg.has_value())
    TORCH_CHECK(bg->numel() == img.size(0) * colors.size(1) && bg->scalar_type() == table.scalar_type(),
                "composite_forward: backgrounds must be [C, D]");
  const int64_t D = colors.size(1);
  const Geometry g = geometry(img, tiles_per_image, tile_width, tile_size);
  AT_DISPATCH_FLOATING_TYPES(table.scalar_type(), "composite_forward", [&] {
    forward_tiles<scalar_t>(table.data_ptr<scalar_t>(), colors.data_ptr<scalar_t>(), pr, tiles.data_ptr<int64_t>(),
                            tiles.numel(), bg.has_value() ? bg->data_ptr<scalar_t>() : nullptr, D, g,
                            rules<scalar_t>(log_floor, log_max, alpha_cut, t_eps), img.data_ptr<scalar_t>(),
                            tf.data_ptr<scalar_t>());
  });
}

// grad [C, Hp, Wp, D] (upstream gradient of the image), rest [C, Hp, Wp] = T_final (bg . g - g_alpha);
// writes d_pairs [M, 6] (d/d the pair's table row) and, optionally, d_pair_colors [M, D] for the pairs of
// ``tiles`` (every row of those pairs: the buffers need no initialisation).
void composite_backward(const torch::Tensor& table, const torch::Tensor& colors, const torch::Tensor& gauss,
                        const torch::Tensor& color, const torch::Tensor& starts, const torch::Tensor& counts,
                        const torch::Tensor& tiles, const torch::Tensor& grad, const torch::Tensor& rest,
                        torch::Tensor d_pairs, const c10::optional<torch::Tensor>& d_pair_colors,
                        int64_t tiles_per_image, int64_t tile_width, int64_t tile_size, double log_floor,
                        double log_max, double alpha_cut, double t_eps) {
  for (const torch::Tensor* t : std::initializer_list<const torch::Tensor*>{&table, &colors, &tiles, &grad, &rest, &d_pairs}) check_cpu(*t, "composite_backward");
  const Pairs pr = pairs(gauss, color, starts, counts);
  check_sizes("composite_backward", table, colors, gauss, color, starts, counts, tiles, grad, rest, tiles_per_image,
              tile_width, tile_size);
  TORCH_CHECK(d_pairs.numel() >= gauss.numel() * 6 && d_pairs.scalar_type() == table.scalar_type(),
              "composite_backward: d_pairs must be [M, 6]");
  if (d_pair_colors.has_value())
    TORCH_CHECK(d_pair_colors->numel() >= gauss.numel() * colors.size(1) &&
                    d_pair_colors->scalar_type() == table.scalar_type(),
                "composite_backward: d_pair_colors must be [M, D]");
  const int64_t D = colors.size(1);
  const Geometry g = geometry(grad, tiles_per_image, tile_width, tile_size);
  AT_DISPATCH_FLOATING_TYPES(table.scalar_type(), "composite_backward", [&] {
    backward_tiles<scalar_t>(table.data_ptr<scalar_t>(), colors.data_ptr<scalar_t>(), pr, tiles.data_ptr<int64_t>(),
                             tiles.numel(), D, g, rules<scalar_t>(log_floor, log_max, alpha_cut, t_eps),
                             grad.data_ptr<scalar_t>(), rest.data_ptr<scalar_t>(), d_pairs.data_ptr<scalar_t>(),
                             d_pair_colors.has_value() ? d_pair_colors->data_ptr<scalar_t>() : nullptr);
  });
}

// out[index[k]] += src[k] for k = 0..M-1 in that order (rows of width W): the pairs' gradients summed onto their
// Gaussians' (or colours') rows, deterministic, where torch's index_add_ costs ~20 ns per element here.
void scatter_add_rows(const torch::Tensor& src, const torch::Tensor& index, torch::Tensor out) {
  for (const torch::Tensor* t : std::initializer_list<const torch::Tensor*>{&src, &index, &out})
    check_cpu(*t, "scatter_add_rows");
  TORCH_CHECK(index.scalar_type() == torch::kInt64 && src.size(0) >= index.size(0) && src.size(1) == out.size(1),
              "scatter_add_rows: src [>= M, W], index [M] int64, out [R, W]");
  const int64_t M = index.size(0), W = src.size(1), R = out.size(0);
  const int64_t* idx = index.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(src.scalar_type(), "scatter_add_rows", [&] {
    const scalar_t* s = src.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    for (int64_t k = 0; k < M; ++k) {
      TORCH_CHECK(idx[k] >= 0 && idx[k] < R, "scatter_add_rows: index out of range");
      for (int64_t w = 0; w < W; ++w) o[idx[k] * W + w] += s[k * W + w];
    }
  });
}
