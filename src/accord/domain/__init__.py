"""The pure core: model, rules and ports. Imports no I/O library (checked by import-linter)."""
