"""sympy printers: one per target for code, one for the spec's own plain syntax."""
