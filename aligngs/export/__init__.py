"""Files the pipeline writes: PLY meshes/points/Gaussians, cameras JSON, report JSON."""
