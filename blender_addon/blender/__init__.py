"""The add-on's Blender glue: properties, operators, panels, the session that runs on Blender's timer, and the
importer that builds objects from result parts."""
