# gmsd container image: `docker build -t gmsd:0.1.0 .` (see docs/deploy.md).
#
# Stage 1 builds the gmsd wheel (with the Lua scripts inside it) and installs it with its
# dependencies into a virtual environment. Stage 2 is a clean slim Python with only that
# environment copied in: no pip cache, no wheels, no build backend, no source tree.

FROM python:3.11-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY lua ./lua

# The dependencies come as manylinux wheels (uvloop, httptools, hiredis, msgspec, lupa): no
# compiler is needed. The wheel is installed by file name, so its version pin is the wheel itself.
# The environment gets no pip or setuptools of its own: the base image's pip installs into it.
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
    && python -m venv --without-pip /opt/gmsd \
    && python -m pip --python /opt/gmsd/bin/python install /wheels/gmsd-*.whl


FROM python:3.11-slim-bookworm

# A fixed numeric uid/gid, so that Kubernetes' runAsNonRoot can check it without /etc/passwd.
RUN groupadd --system --gid 10001 gmsd \
    && useradd --system --no-log-init --uid 10001 --gid gmsd --no-create-home --home-dir /nonexistent gmsd

COPY --from=build /opt/gmsd /opt/gmsd

# Bytecode was compiled at install time: nothing is written next to the code at run time, so
# the root filesystem can be read-only. Logs go to stdout unbuffered.
ENV PATH=/opt/gmsd/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

USER 10001:10001
EXPOSE 8080

# No HEALTHCHECK: Kubernetes probes /healthz and /readyz itself.
# Configuration by environment: GMSD_REDIS_URL, GMSD_CONFIG, GMSD_LOG_LEVEL, GMSD_WORKERS,
# GMSD_SHUTDOWN_TIMEOUT, GMSD_SHUTDOWN_DELAY (docs/deploy.md lists them all). `gmsd` runs as
# PID 1 and handles SIGTERM itself (graceful shutdown); it starts no other processes to reap
# than its own uvicorn workers, which it waits for.
CMD ["gmsd", "serve", "--host", "0.0.0.0", "--port", "8080"]
