"""``python -m tools.demo``: the whole product on the bundled sample room, end to end.

A real ``backend.serve`` on a loopback port (CPU) → the extension zip built by ``build_addon.py`` → headless Blender
(``.venv-blender``) installing it and running Reconstruct Scene → ``scene.blend`` + a Cycles ``scene.png``.
Modules: ``server`` (the backend process), ``addon`` (the zip), ``blender_run`` (the Blender subprocess; its script
is ``blender_session.py``), ``summary`` (the text printed at the end), ``__main__`` (the command line).
"""
