"""``python -m alethia.stack.healthcheck HOST:PORT``: exit 0 when the gRPC server is SERVING.

The container health check of docker-compose.yml (the images have Python, not
grpc_health_probe). Health is open: no service token is needed.
"""

from __future__ import annotations

import sys

from grpc_health.v1 import health_pb2

from alethia.stack.supervisor import health_status


def main(argv: list[str]) -> int:
    """Check each address given; 0 only when all of them are SERVING."""
    if not argv:
        sys.stderr.write("usage: python -m alethia.stack.healthcheck HOST:PORT [...]\n")
        return 2
    ok = True
    for address in argv:
        status = health_status(address, timeout=3.0)
        if status != health_pb2.HealthCheckResponse.SERVING:
            sys.stderr.write(f"{address}: {'no answer' if status is None else f'status {status}'}\n")
            ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
