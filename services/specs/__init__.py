"""The spec service (stage 1: Form -> DB). See :mod:`services.specs.app` for its invariants."""
