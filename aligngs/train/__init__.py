"""Training: the loop, densification strategy and AlignGS loss terms."""
