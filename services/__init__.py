"""The services of the mesh; each is started with ``python -m services.<name>``."""
