"""The mapper service: stages 3-4 of the pipeline (snapshot -> SpecConfig -> tfvars) over gRPC.

Only the server, its wiring and its settings live here; the mapping itself is the pure
library :mod:`alethia.mapping` (``render_tfvars``, the provider tables, the rule set),
which the CLI and the spec service call directly. Stateless: no database, no clock.
"""
