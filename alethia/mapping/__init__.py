"""The mapping library: stages 3-4 of the pipeline (snapshot -> SpecConfig -> tfvars), pure.

The mapper service (``services/mapper``), the spec service's write-time rules, the
``alethia tfvars`` CLI and the benchmarks all call this package; it imports nothing from
``services`` (``tests/test_layering.py`` holds that line).

Invariants:
- Pure: no database, no clock, no network; the same snapshot always renders to
  byte-identical ``terraform.tfvars.json``.
- Strict: a malformed snapshot is an ``InvalidArgument`` listing every problem by field path;
  never a half-filled SpecConfig, never a traceback for the user.
- Values reach Terraform only as data in ``terraform.tfvars.json``; ``git_access_token``
  never does.
- One table per provider (``providers/<cloud>.py``) is the single source of variable names,
  types and descriptions: tfvars, ``DescribeMapping``, ``docs/mapping.md`` and
  ``templates/spec/<cloud>/variables.tf`` are all derived from it.

Not to be confused with :mod:`alethia.mapper`, the generated protobuf package of the
mapper's gRPC contract.
"""
