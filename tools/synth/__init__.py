"""Procedural indoor rooms with full ground truth, rendered by Blender/Cycles (``python -m tools.synth``).

Run with the Blender environment (bpy 5.0.1, Cycles CPU)::

    .venv-blender/bin/python -m tools.synth --out DIR --seed 0 --views 32 --test-every 4 \
        --width 320 --height 240 --samples 16

Only :mod:`tools.synth.blender` / :mod:`tools.synth.generate` need bpy; the rest is plain numpy and imports in
either environment: ``specs`` (what a room is made of), ``materials``, ``furniture`` (builders in their local
frame), ``placement`` (transforms, footprints, free space), ``layout`` (assembles a room: :func:`make_room`),
``camera`` (the camera path), ``geometry`` and ``ply``.

Output folder
-------------
``images/NNNN.png``
    8-bit sRGB renders (Cycles, ``--samples`` spp, OpenImageDenoise unless ``--no-denoise``).
``depth/NNNN.png``
    16-bit planar depth (distance along the camera's viewing axis, *not* ray length) in millimetres;
    0 = invalid. ``depth_m = png / depth_scale`` with ``depth_scale = 1000``.
``semantics/NNNN.png``
    8-bit ADE20K-150 class id + 1 (:mod:`aligngs.priors.ade20k`); 0 = void.
``instances/NNNN.png``
    16-bit instance id (``scene.json`` objects[].instance_id); 0 = none.
``transforms.json``
    nerfstudio style: ``camera_model: "OPENCV"``, shared ``fl_x, fl_y, cx, cy, w, h`` (and zero
    ``k1, k2, p1, p2``), ``depth_scale: 1000``, ``aligngs_world_up: [0, 0, 1]``, ``aligngs_seed``, and
    ``frames[]`` with ``file_path``, ``depth_file_path``, ``semantic_file_path``, ``instance_file_path``,
    ``transform_matrix`` and ``split`` ("train" | "test"; view i is a test view when i % test_every == 0).
``split.json``
    ``{"train": [names], "test": [names]}``, names are the file stems ("0000", ...).
``gt_mesh.ply``
    The exact rendered geometry, world coordinates (metres, +z up), triangles, binary PLY with per-vertex
    int ``class_id`` (ADE20K id, 0..149) and ``instance_id``.
``scene.json``
    Room size, openings, lights and ``objects[]``: name, class_id, class_name, instance_id, stuff, bbox.

Conventions
-----------
* ``transform_matrix`` is camera-to-world in OpenGL/Blender camera axes (x right, y up, z back; the camera
  looks along -z). The OpenCV camera-to-world (x right, y down, z forward) is
  ``c2w_cv = c2w_gl @ diag(1, -1, -1, 1)``.
* Pixel convention (nerfstudio / gsplat): pixel (i, j) covers [i, i+1) x [j, j+1) and its centre is
  (i + 0.5, j + 0.5); ``cx = w / 2``, ``cy = h / 2``. A pixel's depth d back-projects to
  ``X_cam = ((i + 0.5 - cx) / fl_x * d, (j + 0.5 - cy) / fl_y * d, d)`` (OpenCV axes), then ``c2w_cv``.
  Every pass (RGB, depth, labels) is computed from that one pixel-centre ray (see
  :mod:`tools.synth.blender`). If you use the "integer pixel centres" OpenCV convention instead,
  subtract 0.5 from cx and cy.
* Determinism: the layout, camera path, label and depth maps are a function of ``--seed`` (and the view
  count / resolution); Cycles' sampling seed is the scene seed, so RGB noise is reproducible as well.
"""
