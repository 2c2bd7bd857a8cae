"""Alethia provisioning pipeline: shared, hand-written code.

Generated protobuf packages live beside it under ``alethia/<service>/v1/`` (see
``scripts/gen_protos.py``); every other module here is written by hand and named for
what it is: ``errors`` (the one error model), ``rpc`` (gRPC server and client plumbing),
``database`` (SQLAlchemy engines per dialect), ``messaging`` (NATS JetStream),
``cli`` and ``stack`` (the ``alethia`` command and the embedded stack).
"""

__version__ = "0.1.0"
