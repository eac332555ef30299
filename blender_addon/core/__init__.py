"""The add-on's bpy-free core: server address, input folder scan, protocol client, job list, geometry maths and
the Advanced settings schema. Everything here imports without Blender (tests run it under the backend's venv)."""
