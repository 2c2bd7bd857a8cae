"""Stage 2: the snapshot service. Freezes Specs into hashed snapshots and runs the job queue.

Owns ``provision_jobs`` and ``job_outbox`` (nothing else; Specs are read from the spec
service over gRPC, never from its tables). Serves ``SnapshotService`` (users) and
``RunnerService`` (runners) from one gRPC server.

Invariants:
- a job's snapshot and ``config_hash`` are written once, at queue time, and never change;
  a DEPLOY of a plan carries that plan's snapshot and hash;
- ``git_access_token`` is ``""`` in every snapshot, row, event and log; the real token is
  only ever in a ``GetGitToken`` response to the holder of the job's current lease;
- every status change follows the table in ``jobs.py`` and is a guarded SQL ``UPDATE``;
- a workspace runs at most one job at a time, in queue order; a job is claimed once;
- every job change and its events commit in one transaction (outbox); only committed rows
  are published to NATS, with ``Nats-Msg-Id`` so a re-publish is dropped;
- a PLAN is applied at most once, and only while its hash equals the Spec's current hash.
"""
