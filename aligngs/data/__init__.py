"""Input data: the shared types (``types``), loaders (``loaders.load_scene``), splits (``split``).

Kept import-light on purpose: ``aligngs.data.types`` is imported from the Blender environment, which has
no Pillow / scipy / pycolmap. Import the loaders from their modules (``from aligngs.data.loaders import load_scene``).
"""
