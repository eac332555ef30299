"""After training: rendered views, the TSDF mesh, the scene extent, labelling, class splits and editing."""
