# Two entry points: `make demo` (main job on the bundled sample) and `make test` (the whole test suite).
PY ?= python3
VENV := .venv
BVENV := .venv-blender
TORCH := torch==2.13.0

# Debian libraries the wheels load at import time: open3d needs libusb; bpy needs the X11/GL client libraries.
SYSLIBS := libusb-1.0.so.0:libusb-1.0-0 libX11.so.6:libx11-6 libXrender.so.1:libxrender1 libXfixes.so.3:libxfixes3 \
	libXi.so.6:libxi6 libxkbcommon.so.0:libxkbcommon0 libSM.so.6:libsm6 libICE.so.6:libice6 libGL.so.1:libgl1 \
	libEGL.so.1:libegl1

.PHONY: demo test env blender-env sysdeps clean

# Installs the missing ones with apt-get when run as root; otherwise names them and stops.
sysdeps:
	@missing=""; for e in $(SYSLIBS); do lib=$${e%%:*}; pkg=$${e##*:}; \
	  ldconfig -p | grep -q "$$lib" || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing system libraries:$$missing"; \
	    apt-get install -y -q $$missing >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q $$missing >/dev/null; } \
	    || { echo "apt-get could not install:$$missing" >&2; exit 1; }; \
	  else echo "missing system libraries; install them with: sudo apt-get install$$missing" >&2; exit 1; fi; fi

$(VENV)/.stamp: pyproject.toml
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q $(TORCH)
	$(VENV)/bin/pip install -q -e '.[dev,cluster]'
	touch $@

$(BVENV)/.stamp:
	$(PY) -m venv $(BVENV)
	$(BVENV)/bin/pip install -q --upgrade pip
	$(BVENV)/bin/pip install -q bpy==5.0.1 pyzmq pytest
	touch $@

env: $(VENV)/.stamp
blender-env: $(BVENV)/.stamp

demo: sysdeps $(VENV)/.stamp $(BVENV)/.stamp
	$(VENV)/bin/python -m tools.demo

# lint-imports (import-linter, contracts in pyproject.toml): the layers and the "never imports" rules, then pytest.
test: sysdeps $(VENV)/.stamp $(BVENV)/.stamp
	$(VENV)/bin/lint-imports
	$(VENV)/bin/python -m pytest tests -q

clean:
	rm -rf $(VENV) $(BVENV) out
