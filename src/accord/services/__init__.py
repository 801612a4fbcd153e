"""Use cases: what accord does, one module per flow, called by the CLI, the API and the worker."""
