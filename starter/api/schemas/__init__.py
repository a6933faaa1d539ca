"""The HTTP shapes, one module per resource, over the shared wire format of `common`."""
