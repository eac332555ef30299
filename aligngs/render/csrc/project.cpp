// EWA projection of 3D Gaussians and their SH colours on the CPU, forward and backward (w.r.t. the Gaussians; the
// cameras are constants).
//
// The same math as aligngs/render/_projection.py (gsplat 1.5.3's fully_fused_projection, pinhole, unpacked, and
// its SH evaluation), one Gaussian at a time with the backward written out by hand (gsplat's CUDA kernels do the
// same), where the torch version runs ~150 elementwise ops over [C, N] tensors forward and as many backward. Each
// call handles the Gaussians [start, start + count) of every camera and writes only their outputs, so calls on
// disjoint ranges run on parallel threads.

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "ops.h"

namespace {

constexpr double kAlphaThreshold = 1.0 / 255.0;

template <typename T>
struct Camera {
  T W[3][3], t[3], fx, fy, cx, cy, lim_x_pos, lim_x_neg, lim_y_pos, lim_y_neg;
  Camera(const T* vm, const T* K, int64_t width, int64_t height) {
    for (int i = 0; i < 3; ++i) {
      for (int j = 0; j < 3; ++j) W[i][j] = vm[4 * i + j];
      t[i] = vm[4 * i + 3];
    }
    fx = K[0];
    fy = K[4];
    cx = K[2];
    cy = K[5];
    const T tan_fovx = T(0.5) * T(width) / fx, tan_fovy = T(0.5) * T(height) / fy;
    lim_x_pos = (T(width) - cx) / fx + T(0.3) * tan_fovx;
    lim_x_neg = cx / fx + T(0.3) * tan_fovx;
    lim_y_pos = (T(height) - cy) / fy + T(0.3) * tan_fovy;
    lim_y_neg = cy / fy + T(0.3) * tan_fovy;
  }
};

// R(q) diag(s) for a wxyz quaternion normalised like F.normalize (norm clamped at 1e-12).
template <typename T>
struct RotScale {
  T n, q[4], R[3][3], M[3][3];
  RotScale(const T* quat, const T* s) {
    n = std::max(std::sqrt(quat[0] * quat[0] + quat[1] * quat[1] + quat[2] * quat[2] + quat[3] * quat[3]), T(1e-12));
    for (int i = 0; i < 4; ++i) q[i] = quat[i] / n;
    const T w = q[0], x = q[1], y = q[2], z = q[3];
    R[0][0] = 1 - 2 * (y * y + z * z); R[0][1] = 2 * (x * y - w * z); R[0][2] = 2 * (x * z + w * y);
    R[1][0] = 2 * (x * y + w * z); R[1][1] = 1 - 2 * (x * x + z * z); R[1][2] = 2 * (y * z - w * x);
    R[2][0] = 2 * (x * z - w * y); R[2][1] = 2 * (y * z + w * x); R[2][2] = 1 - 2 * (x * x + y * y);
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 3; ++k) M[j][k] = R[j][k] * s[k];
  }
  // gradient of the raw quaternion and the scales from d/dM
  void backward(const T* s, const T gM[3][3], T* g_quat, T* g_scale) const {
    T gR[3][3];
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 3; ++k) gR[j][k] = gM[j][k] * s[k];
    for (int k = 0; k < 3; ++k) g_scale[k] += gM[0][k] * R[0][k] + gM[1][k] * R[1][k] + gM[2][k] * R[2][k];
    const T w = q[0], x = q[1], y = q[2], z = q[3];
    T gq[4];
    gq[0] = 2 * (-z * gR[0][1] + y * gR[0][2] + z * gR[1][0] - x * gR[1][2] - y * gR[2][0] + x * gR[2][1]);
    gq[1] = 2 * (y * gR[0][1] + z * gR[0][2] + y * gR[1][0] - 2 * x * gR[1][1] - w * gR[1][2] + z * gR[2][0] +
                 w * gR[2][1] - 2 * x * gR[2][2]);
    gq[2] = 2 * (-2 * y * gR[0][0] + x * gR[0][1] + w * gR[0][2] + x * gR[1][0] + z * gR[1][2] - w * gR[2][0] +
                 z * gR[2][1] - 2 * y * gR[2][2]);
    gq[3] = 2 * (-2 * z * gR[0][0] - w * gR[0][1] + x * gR[0][2] + w * gR[1][0] - 2 * z * gR[1][1] + y * gR[1][2] +
                 x * gR[2][0] + y * gR[2][1]);
    // through the normalisation: (g - q (q . g)) / |q|
    const T dot = q[0] * gq[0] + q[1] * gq[1] + q[2] * gq[2] + q[3] * gq[3];
    for (int i = 0; i < 4; ++i) g_quat[i] += (gq[i] - q[i] * dot) / n;
  }
};

// Everything one (camera, Gaussian) projection computes, kept for its backward.
template <typename T>
struct Projected {
  T p[3];  // camera-space mean
  bool front;
  T zs, rz, ux, uy, clx, cly, tx, ty, jw0[3], jw1[3], a0[3], a1[3], c0xx, c0yy, cxy, cxx, cyy, det, det_safe, comp, r;
  bool in_x, in_y;

  Projected(const Camera<T>& cam, const T* mean, const RotScale<T>& rs, T eps2d, bool antialiased) {
    for (int i = 0; i < 3; ++i)
      p[i] = cam.W[i][0] * mean[0] + cam.W[i][1] * mean[1] + cam.W[i][2] * mean[2] + cam.t[i];
    front = p[2] > 0;
    zs = front ? p[2] : T(1);
    rz = 1 / zs;
    ux = p[0] * rz;
    uy = p[1] * rz;
    in_x = ux > -cam.lim_x_neg && ux < cam.lim_x_pos;
    in_y = uy > -cam.lim_y_neg && uy < cam.lim_y_pos;
    clx = std::min(std::max(ux, -cam.lim_x_neg), cam.lim_x_pos);
    cly = std::min(std::max(uy, -cam.lim_y_neg), cam.lim_y_pos);
    tx = zs * clx;
    ty = zs * cly;
    const T rz2 = rz * rz;
    const T u0 = cam.fx * rz, v0 = -cam.fx * tx * rz2, u1 = cam.fy * rz, v1 = -cam.fy * ty * rz2;
    for (int j = 0; j < 3; ++j) {
      jw0[j] = u0 * cam.W[0][j] + v0 * cam.W[2][j];
      jw1[j] = u1 * cam.W[1][j] + v1 * cam.W[2][j];
    }
    for (int k = 0; k < 3; ++k) {
      a0[k] = jw0[0] * rs.M[0][k] + jw0[1] * rs.M[1][k] + jw0[2] * rs.M[2][k];
      a1[k] = jw1[0] * rs.M[0][k] + jw1[1] * rs.M[1][k] + jw1[2] * rs.M[2][k];
    }
    c0xx = a0[0] * a0[0] + a0[1] * a0[1] + a0[2] * a0[2];
    cxy = a0[0] * a1[0] + a0[1] * a1[1] + a0[2] * a1[2];
    c0yy = a1[0] * a1[0] + a1[1] * a1[1] + a1[2] * a1[2];
    cxx = c0xx + eps2d;
    cyy = c0yy + eps2d;
    det = cxx * cyy - cxy * cxy;
    det_safe = det > 0 ? det : T(1);
    comp = T(1);
    r = T(0);
    if (antialiased) {
      r = (c0xx * c0yy - cxy * cxy) / det_safe;
      comp = std::sqrt(std::max(r, T(0)));
    }
  }
};

template <typename T>
void project_range(const T* means, const T* quats, const T* scales, const T* opac, const T* viewmats, const T* Ks,
                   int64_t C, int64_t N, int64_t start, int64_t count, int64_t width, int64_t height, T eps2d,
                   T near_plane, T far_plane, T radius_clip, bool antialiased, T* means2d, T* conics, T* depths,
                   T* opac_out, int32_t* radii) {
  std::vector<Camera<T>> cams;
  for (int64_t c = 0; c < C; ++c) cams.emplace_back(viewmats + 16 * c, Ks + 9 * c, width, height);
  for (int64_t n = start; n < start + count; ++n) {
    const RotScale<T> rs(quats + 4 * n, scales + 3 * n);
    for (int64_t c = 0; c < C; ++c) {
      const Camera<T>& cam = cams[c];
      const Projected<T> pr(cam, means + 3 * n, rs, eps2d, antialiased);
      const int64_t f = c * N + n;
      const T mx = cam.fx * pr.p[0] * pr.rz + cam.cx, my = cam.fy * pr.p[1] * pr.rz + cam.cy;
      means2d[2 * f] = mx;
      means2d[2 * f + 1] = my;
      conics[3 * f] = pr.cyy / pr.det_safe;
      conics[3 * f + 1] = -pr.cxy / pr.det_safe;
      conics[3 * f + 2] = pr.cxx / pr.det_safe;
      depths[f] = pr.p[2];
      const T op = opac[n] * pr.comp;
      opac_out[f] = op;
      // gsplat 1.5.3's opacity-aware box; a Gaussian that fails any test gets radii 0 (invisible)
      const T extend = std::min(std::sqrt(T(2) * std::log(std::max(op, T(kAlphaThreshold)) / T(kAlphaThreshold))),
                                T(3.33));
      const T rx = std::ceil(extend * std::sqrt(std::max(pr.cxx, T(0))));
      const T ry = std::ceil(extend * std::sqrt(std::max(pr.cyy, T(0))));
      const bool valid = pr.p[2] >= near_plane && pr.p[2] <= far_plane && pr.front && pr.det > 0 &&
                         op >= T(kAlphaThreshold) && (rx > radius_clip || ry > radius_clip) && mx + rx > 0 &&
                         mx - rx < T(width) && my + ry > 0 && my - ry < T(height) && std::isfinite(mx) &&
                         std::isfinite(my);
      radii[2 * f] = valid ? int32_t(rx) : 0;
      radii[2 * f + 1] = valid ? int32_t(ry) : 0;
    }
  }
}

template <typename T>
void project_backward_range(const T* means, const T* quats, const T* scales, const T* opac, const T* viewmats,
                            const T* Ks, int64_t C, int64_t N, int64_t start, int64_t count, int64_t width,
                            int64_t height, T eps2d, bool antialiased, const T* g_means2d, const T* g_conics,
                            const T* g_depths, const T* g_opac, T* d_means, T* d_quats, T* d_scales, T* d_opac) {
  std::vector<Camera<T>> cams;
  for (int64_t c = 0; c < C; ++c) cams.emplace_back(viewmats + 16 * c, Ks + 9 * c, width, height);
  for (int64_t n = start; n < start + count; ++n) {
    const RotScale<T> rs(quats + 4 * n, scales + 3 * n);
    T gM[3][3] = {{0, 0, 0}, {0, 0, 0}, {0, 0, 0}};
    T* dm = d_means + 3 * n;
    for (int64_t c = 0; c < C; ++c) {
      const Camera<T>& cam = cams[c];
      const Projected<T> pr(cam, means + 3 * n, rs, eps2d, antialiased);
      const int64_t f = c * N + n;
      const T gmx = g_means2d ? g_means2d[2 * f] : T(0), gmy = g_means2d ? g_means2d[2 * f + 1] : T(0);
      const T ga = g_conics ? g_conics[3 * f] : T(0), gb = g_conics ? g_conics[3 * f + 1] : T(0),
              gc = g_conics ? g_conics[3 * f + 2] : T(0);
      const T gop = g_opac ? g_opac[f] : T(0);
      if (gmx == 0 && gmy == 0 && ga == 0 && gb == 0 && gc == 0 && gop == 0 && (!g_depths || g_depths[f] == 0))
        continue;  // an unused (invisible) Gaussian of this camera: nothing flows back
      // opacity (and, antialiased, the compensation sqrt(det_orig / det))
      d_opac[n] += gop * pr.comp;
      T g_det = 0, g_det_orig = 0;
      if (antialiased && pr.r > 0) {
        const T g_r = gop * opac[n] * T(0.5) / pr.comp;
        g_det_orig = g_r / pr.det_safe;
        if (pr.det > 0) g_det -= g_r * pr.r / pr.det_safe;
      }
      // conic = (cyy, -cxy, cxx) / det
      T g_cxx = 0, g_cyy = 0, g_cxy = 0;
      if (pr.det > 0) {
        const T id = 1 / pr.det_safe;
        g_det -= (ga * pr.cyy - gb * pr.cxy + gc * pr.cxx) * id * id;
        g_cxx = gc * id;
        g_cyy = ga * id;
        g_cxy = -gb * id;
      } else {
        g_cxx = gc;
        g_cyy = ga;
        g_cxy = -gb;
      }
      // det = cxx cyy - cxy^2 (with eps2d), det_orig = c0xx c0yy - cxy^2
      g_cxx += g_det * pr.cyy + g_det_orig * pr.c0yy;
      g_cyy += g_det * pr.cxx + g_det_orig * pr.c0xx;
      g_cxy -= 2 * pr.cxy * (g_det + g_det_orig);
      // cov = A A^T with A's rows a0, a1 = (J W) M
      T g_a0[3], g_a1[3], g_jw0[3] = {0, 0, 0}, g_jw1[3] = {0, 0, 0};
      for (int k = 0; k < 3; ++k) {
        g_a0[k] = 2 * g_cxx * pr.a0[k] + g_cxy * pr.a1[k];
        g_a1[k] = 2 * g_cyy * pr.a1[k] + g_cxy * pr.a0[k];
      }
      for (int j = 0; j < 3; ++j)
        for (int k = 0; k < 3; ++k) {
          gM[j][k] += g_a0[k] * pr.jw0[j] + g_a1[k] * pr.jw1[j];
          g_jw0[j] += g_a0[k] * rs.M[j][k];
          g_jw1[j] += g_a1[k] * rs.M[j][k];
        }
      // J = [[fx rz, 0, -fx tx rz^2], [0, fy rz, -fy ty rz^2]] with (tx, ty) the clamped camera-space mean
      const T g_u0 = g_jw0[0] * cam.W[0][0] + g_jw0[1] * cam.W[0][1] + g_jw0[2] * cam.W[0][2];
      const T g_v0 = g_jw0[0] * cam.W[2][0] + g_jw0[1] * cam.W[2][1] + g_jw0[2] * cam.W[2][2];
      const T g_u1 = g_jw1[0] * cam.W[1][0] + g_jw1[1] * cam.W[1][1] + g_jw1[2] * cam.W[1][2];
      const T g_v1 = g_jw1[0] * cam.W[2][0] + g_jw1[1] * cam.W[2][1] + g_jw1[2] * cam.W[2][2];
      const T rz = pr.rz, rz2 = rz * rz;
      T g_rz = g_u0 * cam.fx + g_u1 * cam.fy - g_v0 * cam.fx * pr.tx * 2 * rz - g_v1 * cam.fy * pr.ty * 2 * rz;
      const T g_tx = -g_v0 * cam.fx * rz2, g_ty = -g_v1 * cam.fy * rz2;
      T g_x = 0, g_y = 0, g_zs = 0;
      // tx = zs * clamp(x rz, -lim, lim)
      g_zs += g_tx * pr.clx + g_ty * pr.cly;
      if (pr.in_x) {
        g_x += g_tx * pr.zs * rz;
        g_rz += g_tx * pr.zs * pr.p[0];
      }
      if (pr.in_y) {
        g_y += g_ty * pr.zs * rz;
        g_rz += g_ty * pr.zs * pr.p[1];
      }
      // means2d = (fx x rz + cx, fy y rz + cy)
      g_x += gmx * cam.fx * rz;
      g_y += gmy * cam.fy * rz;
      g_rz += gmx * cam.fx * pr.p[0] + gmy * cam.fy * pr.p[1];
      g_zs -= g_rz * rz2;
      T g_z = (pr.front ? g_zs : T(0)) + (g_depths ? g_depths[f] : T(0));
      // camera-space mean = W mean + t
      for (int i = 0; i < 3; ++i) dm[i] += cam.W[0][i] * g_x + cam.W[1][i] * g_y + cam.W[2][i] * g_z;
    }
    rs.backward(scales + 3 * n, gM, d_quats + 4 * n, d_scales + 3 * n);
  }
}

// ---- spherical harmonics (gsplat's real basis, Sloan's constants and order) ----

// A number with its derivatives along x, y, z: the basis is written once and differentiated by evaluating it on
// these (forward mode, 3 directions).
template <typename T>
struct D3 {
  T v, d[3];
  D3(T v_ = 0) : v(v_), d{0, 0, 0} {}
  D3(T v_, T dx, T dy, T dz) : v(v_), d{dx, dy, dz} {}
};
template <typename T> D3<T> operator+(D3<T> a, D3<T> b) { return {a.v + b.v, a.d[0] + b.d[0], a.d[1] + b.d[1], a.d[2] + b.d[2]}; }
template <typename T> D3<T> operator-(D3<T> a, D3<T> b) { return {a.v - b.v, a.d[0] - b.d[0], a.d[1] - b.d[1], a.d[2] - b.d[2]}; }
template <typename T> D3<T> operator*(D3<T> a, D3<T> b) {
  return {a.v * b.v, a.d[0] * b.v + a.v * b.d[0], a.d[1] * b.v + a.v * b.d[1], a.d[2] * b.v + a.v * b.d[2]};
}
template <typename T> D3<T> operator*(T s, D3<T> a) { return {s * a.v, s * a.d[0], s * a.d[1], s * a.d[2]}; }
template <typename T> D3<T> operator+(D3<T> a, T s) { return {a.v + s, a.d[0], a.d[1], a.d[2]}; }
template <typename T> D3<T> operator-(D3<T> a, T s) { return {a.v - s, a.d[0], a.d[1], a.d[2]}; }

// (degree + 1)^2 basis values at the unit direction (x, y, z); V is a scalar or a D3.
template <typename S, typename V>
void sh_basis(int degree, V x, V y, V z, V* b) {
  b[0] = V(S(0.2820947917738781));
  if (degree < 1) return;
  const S c1 = S(0.48860251190292);
  b[1] = S(-c1) * y;
  b[2] = c1 * z;
  b[3] = S(-c1) * x;
  if (degree < 2) return;
  const V z2 = z * z;
  V t_b = S(-1.092548430592079) * z;
  const V c_1 = x * x - y * y;
  const V s_1 = S(2) * (x * y);
  b[4] = S(0.5462742152960395) * s_1;
  b[5] = t_b * y;
  b[6] = S(0.9461746957575601) * z2 - S(0.3153915652525201);
  b[7] = t_b * x;
  b[8] = S(0.5462742152960395) * c_1;
  if (degree < 3) return;
  V t_c = S(-2.285228997322329) * z2 + S(0.4570457994644658);
  t_b = S(1.445305721320277) * z;
  S t_a = S(-0.5900435899266435);
  const V c_2 = x * c_1 - y * s_1;
  const V s_2 = x * s_1 + y * c_1;
  b[9] = t_a * s_2;
  b[10] = t_b * s_1;
  b[11] = t_c * y;
  b[12] = z * (S(1.865881662950577) * z2 - S(1.119528997770346));
  b[13] = t_c * x;
  b[14] = t_b * c_1;
  b[15] = t_a * c_2;
  if (degree < 4) return;
  const V t_d = z * (S(-4.683325804901025) * z2 + S(2.007139630671868));
  t_c = S(3.31161143515146) * z2 - S(0.47308734787878);
  t_b = S(-1.770130769779931) * z;
  t_a = S(0.6258357354491763);
  const V c_3 = x * c_2 - y * s_2;
  const V s_3 = x * s_2 + y * c_2;
  b[16] = t_a * s_3;
  b[17] = t_b * s_2;
  b[18] = t_c * s_1;
  b[19] = t_d * y;
  b[20] = S(1.984313483298443) * z2 * (S(1.865881662950577) * z2 - S(1.119528997770346)) -
          S(1.006230589874905) * (S(0.9461746957575601) * z2 - S(0.3153915652525201));
  b[21] = t_d * x;
  b[22] = t_c * c_1;
  b[23] = t_b * c_2;
  b[24] = t_a * c_3;
}

// Camera centres -R^T t of the world-to-camera matrices.
template <typename T>
std::vector<T> centres(const T* viewmats, int64_t C) {
  std::vector<T> out(3 * C);
  for (int64_t c = 0; c < C; ++c) {
    const T* v = viewmats + 16 * c;
    for (int i = 0; i < 3; ++i) out[3 * c + i] = -(v[i] * v[3] + v[4 + i] * v[7] + v[8 + i] * v[11]);
  }
  return out;
}

// coeffs [N, K, 3] (shared, per_camera = false) or [C, N, K, 3]; colours [C, N, 3] = max(sum_k b_k c_k + 0.5, 0)
template <typename T>
void sh_range(int degree, const T* means, const T* coeffs, int64_t K, bool per_camera, const T* viewmats, int64_t C,
              int64_t N, int64_t start, int64_t count, T* colors) {
  const std::vector<T> cc = centres(viewmats, C);
  T b[25];
  for (int64_t c = 0; c < C; ++c)
    for (int64_t n = start; n < start + count; ++n) {
      T d[3];
      for (int i = 0; i < 3; ++i) d[i] = means[3 * n + i] - cc[3 * c + i];
      const T len = std::max(std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]), T(1e-12));
      sh_basis<T, T>(degree, d[0] / len, d[1] / len, d[2] / len, b);
      const T* co = coeffs + ((per_camera ? c * N : 0) + n) * K * 3;
      T* out = colors + 3 * (c * N + n);
      const int nb = (degree + 1) * (degree + 1);
      for (int ch = 0; ch < 3; ++ch) {
        T s = 0;
        for (int k = 0; k < nb; ++k) s += b[k] * co[3 * k + ch];
        out[ch] = std::max(s + T(0.5), T(0));
      }
    }
}

template <typename T>
void sh_backward_range(int degree, const T* means, const T* coeffs, int64_t K, bool per_camera, const T* viewmats,
                       int64_t C, int64_t N, int64_t start, int64_t count, const T* g_colors, T* d_means,
                       T* d_coeffs) {
  const std::vector<T> cc = centres(viewmats, C);
  D3<T> b[25];
  const int nb = (degree + 1) * (degree + 1);
  for (int64_t c = 0; c < C; ++c)
    for (int64_t n = start; n < start + count; ++n) {
      const T* g = g_colors + 3 * (c * N + n);
      if (g[0] == 0 && g[1] == 0 && g[2] == 0) continue;
      T d[3];
      for (int i = 0; i < 3; ++i) d[i] = means[3 * n + i] - cc[3 * c + i];
      const T len = std::max(std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]), T(1e-12));
      const T u[3] = {d[0] / len, d[1] / len, d[2] / len};
      sh_basis<T, D3<T>>(degree, D3<T>(u[0], 1, 0, 0), D3<T>(u[1], 0, 1, 0), D3<T>(u[2], 0, 0, 1), b);
      const int64_t row = ((per_camera ? c * N : 0) + n) * K * 3;
      const T* co = coeffs + row;
      T* dco = d_coeffs + row;
      T g_rgb[3];
      for (int ch = 0; ch < 3; ++ch) {
        T s = 0;
        for (int k = 0; k < nb; ++k) s += b[k].v * co[3 * k + ch];
        g_rgb[ch] = s + T(0.5) > 0 ? g[ch] : T(0);  // clamp at 0
      }
      T g_u[3] = {0, 0, 0};
      for (int k = 0; k < nb; ++k) {
        const T gb = g_rgb[0] * co[3 * k] + g_rgb[1] * co[3 * k + 1] + g_rgb[2] * co[3 * k + 2];
        for (int ch = 0; ch < 3; ++ch) dco[3 * k + ch] += b[k].v * g_rgb[ch];
        for (int i = 0; i < 3; ++i) g_u[i] += gb * b[k].d[i];
      }
      // through the normalisation u = d / |d|
      const T dot = u[0] * g_u[0] + u[1] * g_u[1] + u[2] * g_u[2];
      for (int i = 0; i < 3; ++i) d_means[3 * n + i] += (g_u[i] - u[i] * dot) / len;
    }
}

template <typename T>
const T* ptr_or_null(const c10::optional<torch::Tensor>& t) {
  return t.has_value() ? t->data_ptr<T>() : nullptr;
}

// every op here reads N Gaussians (means [N, 3]) and C cameras (viewmats [C, 4, 4]) and touches the Gaussians
// [start, start + count) of arrays whose sizes the ops' checks compare with N and C (a mismatch would read or
// write past them)
void check_gaussians(const char* op, const torch::Tensor& means, const torch::Tensor& viewmats, int64_t start,
                     int64_t count) {
  TORCH_CHECK(means.dim() == 2 && means.size(1) == 3, op, ": means must be [N, 3]");
  TORCH_CHECK(viewmats.dim() == 3 && viewmats.size(1) == 4 && viewmats.size(2) == 4, op,
              ": viewmats must be [C, 4, 4]");
  TORCH_CHECK(viewmats.scalar_type() == means.scalar_type(), op, ": viewmats must have the dtype of means");
  const int64_t N = means.size(0);
  TORCH_CHECK(0 <= start && 0 <= count && start + count <= N, op, ": range [", start, ", ", start + count,
              ") outside the ", N, " Gaussians");
}

void check_projection(const char* op, const torch::Tensor& means, const torch::Tensor& quats,
                      const torch::Tensor& scales, const torch::Tensor& opacities, const torch::Tensor& viewmats,
                      const torch::Tensor& Ks, int64_t start, int64_t count) {
  check_gaussians(op, means, viewmats, start, count);
  const int64_t N = means.size(0);
  TORCH_CHECK(quats.numel() == 4 * N && scales.numel() == 3 * N && opacities.numel() == N, op,
              ": quats [N, 4], scales [N, 3] and opacities [N] must match means' N = ", N);
  TORCH_CHECK(Ks.numel() == 9 * viewmats.size(0), op, ": Ks must be [C, 3, 3]");
  for (const torch::Tensor* t : {&quats, &scales, &opacities, &Ks})
    TORCH_CHECK(t->scalar_type() == means.scalar_type(), op, ": all inputs must have the dtype of means");
}

void check_numel(const char* op, const char* name, const torch::Tensor& t, int64_t n, at::ScalarType dtype) {
  TORCH_CHECK(t.numel() == n && t.scalar_type() == dtype, op, ": ", name, " must hold ", n, " values of ", dtype,
              ", got ", t.numel(), " of ", t.scalar_type());
}

// the SH ops index K coefficients per Gaussian up to the degree's (degree + 1)^2 and write C x N colours
void check_sh(const char* op, int64_t degree, const torch::Tensor& means, const torch::Tensor& coeffs,
              const torch::Tensor& viewmats, const torch::Tensor& colors, int64_t start, int64_t count) {
  TORCH_CHECK(degree >= 0 && degree <= 4, op, ": degree must be 0..4, got ", degree);
  check_gaussians(op, means, viewmats, start, count);
  const int64_t C = viewmats.size(0), N = means.size(0);
  TORCH_CHECK((coeffs.dim() == 3 && coeffs.size(0) == N && coeffs.size(2) == 3) ||
                  (coeffs.dim() == 4 && coeffs.size(0) == C && coeffs.size(1) == N && coeffs.size(3) == 3),
              op, ": coeffs must be [N, K, 3] or [C, N, K, 3]");
  TORCH_CHECK((degree + 1) * (degree + 1) <= coeffs.size(-2), op, ": degree ", degree, " needs K >= ",
              (degree + 1) * (degree + 1), " coefficients, got K = ", coeffs.size(-2));
  TORCH_CHECK(colors.numel() == C * N * 3, op, ": colours must hold C x N x 3 values");
  for (const torch::Tensor* t : {&coeffs, &colors})
    TORCH_CHECK(t->scalar_type() == means.scalar_type(), op, ": all tensors must have the dtype of means");
}

}  // namespace

void project_forward(const torch::Tensor& means, const torch::Tensor& quats, const torch::Tensor& scales,
                     const torch::Tensor& opacities, const torch::Tensor& viewmats, const torch::Tensor& Ks,
                     int64_t start, int64_t count, int64_t width, int64_t height, double eps2d, double near_plane,
                     double far_plane, double radius_clip, bool antialiased, torch::Tensor means2d,
                     torch::Tensor conics, torch::Tensor depths, torch::Tensor opac_out, torch::Tensor radii) {
  for (const torch::Tensor* t : std::initializer_list<const torch::Tensor*>{
           &means, &quats, &scales, &opacities, &viewmats, &Ks, &means2d, &conics, &depths, &opac_out, &radii})
    check_cpu(*t, "project_forward");
  check_projection("project_forward", means, quats, scales, opacities, viewmats, Ks, start, count);
  const int64_t C = viewmats.size(0), N = means.size(0);
  const auto dt = means.scalar_type();
  check_numel("project_forward", "means2d", means2d, C * N * 2, dt);
  check_numel("project_forward", "conics", conics, C * N * 3, dt);
  check_numel("project_forward", "depths", depths, C * N, dt);
  check_numel("project_forward", "opacities out", opac_out, C * N, dt);
  check_numel("project_forward", "radii", radii, C * N * 2, torch::kInt32);
  AT_DISPATCH_FLOATING_TYPES(means.scalar_type(), "project_forward", [&] {
    project_range<scalar_t>(means.data_ptr<scalar_t>(), quats.data_ptr<scalar_t>(), scales.data_ptr<scalar_t>(),
                            opacities.data_ptr<scalar_t>(), viewmats.data_ptr<scalar_t>(), Ks.data_ptr<scalar_t>(), C,
                            N, start, count, width, height, scalar_t(eps2d), scalar_t(near_plane),
                            scalar_t(far_plane), scalar_t(radius_clip), antialiased, means2d.data_ptr<scalar_t>(),
                            conics.data_ptr<scalar_t>(), depths.data_ptr<scalar_t>(), opac_out.data_ptr<scalar_t>(),
                            radii.data_ptr<int32_t>());
  });
}

void project_backward(const torch::Tensor& means, const torch::Tensor& quats, const torch::Tensor& scales,
                      const torch::Tensor& opacities, const torch::Tensor& viewmats, const torch::Tensor& Ks,
                      int64_t start, int64_t count, int64_t width, int64_t height, double eps2d, bool antialiased,
                      const c10::optional<torch::Tensor>& g_means2d, const c10::optional<torch::Tensor>& g_conics,
                      const c10::optional<torch::Tensor>& g_depths, const c10::optional<torch::Tensor>& g_opac,
                      torch::Tensor d_means, torch::Tensor d_quats, torch::Tensor d_scales, torch::Tensor d_opac) {
  for (const torch::Tensor* t : std::initializer_list<const torch::Tensor*>{
           &means, &quats, &scales, &opacities, &viewmats, &Ks, &d_means, &d_quats, &d_scales, &d_opac})
    check_cpu(*t, "project_backward");
  for (const c10::optional<torch::Tensor>* t : {&g_means2d, &g_conics, &g_depths, &g_opac})
    if (t->has_value()) check_cpu(**t, "project_backward");
  check_projection("project_backward", means, quats, scales, opacities, viewmats, Ks, start, count);
  const int64_t C = viewmats.size(0), N = means.size(0);
  const auto dt = means.scalar_type();
  const std::pair<const c10::optional<torch::Tensor>*, int64_t> grads[] = {
      {&g_means2d, 2}, {&g_conics, 3}, {&g_depths, 1}, {&g_opac, 1}};
  for (const auto& [g, width] : grads)
    if (g->has_value()) check_numel("project_backward", "an output gradient", **g, C * N * width, dt);
  check_numel("project_backward", "d_means", d_means, N * 3, dt);
  check_numel("project_backward", "d_quats", d_quats, N * 4, dt);
  check_numel("project_backward", "d_scales", d_scales, N * 3, dt);
  check_numel("project_backward", "d_opacities", d_opac, N, dt);
  AT_DISPATCH_FLOATING_TYPES(means.scalar_type(), "project_backward", [&] {
    project_backward_range<scalar_t>(
        means.data_ptr<scalar_t>(), quats.data_ptr<scalar_t>(), scales.data_ptr<scalar_t>(),
        opacities.data_ptr<scalar_t>(), viewmats.data_ptr<scalar_t>(), Ks.data_ptr<scalar_t>(), C, N, start, count,
        width, height, scalar_t(eps2d), antialiased, ptr_or_null<scalar_t>(g_means2d),
        ptr_or_null<scalar_t>(g_conics), ptr_or_null<scalar_t>(g_depths), ptr_or_null<scalar_t>(g_opac),
        d_means.data_ptr<scalar_t>(), d_quats.data_ptr<scalar_t>(), d_scales.data_ptr<scalar_t>(),
        d_opac.data_ptr<scalar_t>());
  });
}

void sh_forward(int64_t degree, const torch::Tensor& means, const torch::Tensor& coeffs, const torch::Tensor& viewmats,
                int64_t start, int64_t count, torch::Tensor colors) {
  for (const torch::Tensor* t : std::initializer_list<const torch::Tensor*>{&means, &coeffs, &viewmats, &colors})
    check_cpu(*t, "sh_forward");
  check_sh("sh_forward", degree, means, coeffs, viewmats, colors, start, count);
  const int64_t C = viewmats.size(0), N = means.size(0), K = coeffs.size(-2);
  AT_DISPATCH_FLOATING_TYPES(means.scalar_type(), "sh_forward", [&] {
    sh_range<scalar_t>(int(degree), means.data_ptr<scalar_t>(), coeffs.data_ptr<scalar_t>(), K, coeffs.dim() == 4,
                       viewmats.data_ptr<scalar_t>(), C, N, start, count, colors.data_ptr<scalar_t>());
  });
}

void sh_backward(int64_t degree, const torch::Tensor& means, const torch::Tensor& coeffs,
                 const torch::Tensor& viewmats, int64_t start, int64_t count, const torch::Tensor& g_colors,
                 torch::Tensor d_means, torch::Tensor d_coeffs) {
  for (const torch::Tensor* t :
       std::initializer_list<const torch::Tensor*>{&means, &coeffs, &viewmats, &g_colors, &d_means, &d_coeffs})
    check_cpu(*t, "sh_backward");
  check_sh("sh_backward", degree, means, coeffs, viewmats, g_colors, start, count);
  TORCH_CHECK(d_means.sizes() == means.sizes() && d_coeffs.sizes() == coeffs.sizes(),
              "sh_backward: gradient outputs must match means and coeffs");
  const int64_t C = viewmats.size(0), N = means.size(0), K = coeffs.size(-2);
  AT_DISPATCH_FLOATING_TYPES(means.scalar_type(), "sh_backward", [&] {
    sh_backward_range<scalar_t>(int(degree), means.data_ptr<scalar_t>(), coeffs.data_ptr<scalar_t>(), K,
                                coeffs.dim() == 4, viewmats.data_ptr<scalar_t>(), C, N, start, count,
                                g_colors.data_ptr<scalar_t>(), d_means.data_ptr<scalar_t>(),
                                d_coeffs.data_ptr<scalar_t>());
  });
}
