"""The mapper service: stages 3-4 of the pipeline (snapshot -> SpecConfig -> tfvars).

Invariants:
- Stateless and pure: no database, no clock, no network besides serving; the same snapshot
  always renders to byte-identical ``terraform.tfvars.json``.
- Strict: a malformed snapshot is an ``InvalidArgument`` listing every problem by field path;
  never a half-filled SpecConfig, never a traceback for the user.
- Values reach Terraform only as data in ``terraform.tfvars.json``; ``git_access_token``
  never does.
- One table per provider (``providers/<cloud>.py``) is the single source of variable names,
  types and descriptions: tfvars, ``DescribeMapping``, ``docs/mapping.md`` and
  ``templates/spec/<cloud>/variables.tf`` are all derived from it.
"""
