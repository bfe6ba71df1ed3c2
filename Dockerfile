# syntax=docker/dockerfile:1
# The Manager's image (spec §7.1), in three stages: the web console (Node.js), the Python
# environment from uv.lock with the console inside the package, and a slim runtime holding
# only that environment. Every build step is scripts/build.sh's: `make install` runs the same
# script on developers' machines and in CI.
#
#   docker build -t ops-scaffold/manager:0.1.0 .
#   docker run --rm --env-file manager.env ops-scaffold/manager:0.1.0 migrate   # deployment step
#   docker run -d -p 8080:8080 -p 9090:9090 --env-file manager.env ops-scaffold/manager:0.1.0
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:20-bookworm-slim

# --- the web console -------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS web
WORKDIR /src
COPY scripts/build.sh scripts/
# The npm packages first: they change less often than the console's sources.
COPY web/package.json web/package-lock.json web/
RUN bash scripts/build.sh web-deps
COPY web/ web/
RUN bash scripts/build.sh web

# --- the Python environment ------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS python
WORKDIR /app
COPY scripts/build.sh scripts/
COPY pyproject.toml uv.lock README.md ./
COPY src/ src/
COPY --from=web /src/src/opscaffold/manager/ui/static/ src/opscaffold/manager/ui/static/
# The venv lives where the runtime stage keeps it: its scripts name their interpreter by path.
RUN VENV=/app/.venv bash scripts/build.sh python --image

# --- the runtime -----------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
# A fixed, unprivileged uid: volumes and key files are chowned to it (docs/deployment.md).
RUN groupadd --system --gid 10001 ops \
    && useradd --system --uid 10001 --gid ops --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin ops \
    && install -d -o ops -g ops -m 0700 /app /app/data
WORKDIR /app
COPY --from=python /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OPS_DATA_DIR=/app/data
USER 10001:10001
# Packages (data/versions) and the secrets the Manager generates when not given.
VOLUME ["/app/data"]
# HTTP (API, console, /metrics, probes) and gRPC (daemons).
EXPOSE 8080 9090
# /livez: the process answers. A database outage must not get the container restarted.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/livez', timeout=2)"]
# `serve` by default; `migrate` (the deployment step), `user`, `keys`, ... as the command.
ENTRYPOINT ["ops-manager"]
CMD ["serve"]
