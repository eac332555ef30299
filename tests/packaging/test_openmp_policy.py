"""Importing aligngs before torch makes torch's OpenMP threads wait passively (docs/platform.md, "The C++ kernels"),
and leaves a policy the user chose alone."""

import os
import subprocess
import sys

import pytest

CODE = "import aligngs, os, torch; print(os.environ.get('OMP_WAIT_POLICY'))"


@pytest.mark.parametrize("preset,expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_import_sets_passive_openmp_wait_policy(preset, expected):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if preset is not None:
        env["OMP_WAIT_POLICY"] = preset
    out = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected


def test_torch_imported_first_is_left_alone():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code = "import torch, aligngs, os; print(os.environ.get('OMP_WAIT_POLICY'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "None"  # too late for libgomp to read it: not pretended
