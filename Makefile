# Two entry points: `make demo` (main job on the bundled sample) and `make test` (the whole test suite).
PY ?= python3
VENV := .venv
BVENV := .venv-blender
TORCH := torch==2.13.0

.PHONY: demo test env blender-env clean

$(VENV)/.stamp: pyproject.toml
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q $(TORCH)
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

$(BVENV)/.stamp:
	$(PY) -m venv $(BVENV)
	$(BVENV)/bin/pip install -q --upgrade pip
	$(BVENV)/bin/pip install -q bpy==5.0.1 pyzmq pytest
	touch $@

env: $(VENV)/.stamp
blender-env: $(BVENV)/.stamp

demo: $(VENV)/.stamp $(BVENV)/.stamp
	$(VENV)/bin/python -m aligngs.demo

test: $(VENV)/.stamp $(BVENV)/.stamp
	$(VENV)/bin/python -m pytest tests -q

clean:
	rm -rf $(VENV) $(BVENV) out
