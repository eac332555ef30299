"""Per-view priors from 2-D teachers: semantic + depth teachers, the checkpoint registry, the prior cache and the
ADE20K tables.

Importing this package (and :mod:`aligngs.priors.ade20k`) needs only numpy; the teachers import torch/transformers."""
