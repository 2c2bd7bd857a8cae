"""The one pipeline harness of the end-to-end tests, the reliability tests and the benchmarks.

- :mod:`.pipeline`: :class:`Pipeline`, the services in-process or as processes, and its helpers;
- :mod:`.children`: runner and snapshot service processes, :func:`kill_tree`;
- :mod:`.events`: the event reader (what JetStream holds, terminal events as they arrive);
- :mod:`.faults`: what a reliability test breaks (a TCP link, a private Postgres) and log capture;
- :mod:`.infra`: a benchmark run's NATS and S3, Postgres databases, read-back helpers.
"""

from .children import REPO_ROOT, RunnerProcess, ServiceChild, kill_tree
from .events import TerminalEvents, job_events, stream_messages
from .faults import Link, LogCapture, PrivatePostgres
from .infra import DEFAULT_POSTGRES, PostgresDatabases, SharedInfra, database_text, git_out
from .pipeline import (
    CANCELLED,
    CHEAP_TEMPLATES,
    DEPLOY,
    DESTROY,
    E2E,
    ERRORED,
    FAILED,
    GIT_TOKEN,
    OTHER_GIT_HOST,
    PLAN,
    QUEUED,
    QUICK,
    REAL_TEMPLATES,
    REPO_URL,
    RETRYABLE,
    RUNNING,
    S3_ACCESS,
    S3_SECRET,
    SUCCEEDED,
    TERMINAL,
    UNLOCK,
    Pipeline,
    status_name,
    ts_seconds,
)

__all__ = [
    "CANCELLED",
    "CHEAP_TEMPLATES",
    "DEFAULT_POSTGRES",
    "DEPLOY",
    "DESTROY",
    "E2E",
    "ERRORED",
    "FAILED",
    "GIT_TOKEN",
    "OTHER_GIT_HOST",
    "PLAN",
    "QUEUED",
    "QUICK",
    "REAL_TEMPLATES",
    "REPO_ROOT",
    "REPO_URL",
    "RETRYABLE",
    "RUNNING",
    "S3_ACCESS",
    "S3_SECRET",
    "SUCCEEDED",
    "TERMINAL",
    "UNLOCK",
    "Link",
    "LogCapture",
    "Pipeline",
    "PostgresDatabases",
    "PrivatePostgres",
    "RunnerProcess",
    "ServiceChild",
    "SharedInfra",
    "TerminalEvents",
    "database_text",
    "git_out",
    "job_events",
    "kill_tree",
    "status_name",
    "stream_messages",
    "ts_seconds",
]
