# One image for every service: each Deployment passes its module, e.g. `args: ["services.metering"]`
# (or `["services.metering", "migrate"]` for its migrations Job).
#   docker build -t billing-platform:0.1.0 .
# Runs as a non-root numeric user and writes nothing outside /tmp, so it works with a read-only root filesystem.

# --- build: install the platform into a virtualenv, then generate the protobuf code and the native libraries the
# way `make protos` does (the Makefile's own rule, with this virtualenv as its VENV).
FROM python:3.11-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev make \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY . .
RUN /opt/venv/bin/pip install . \
    && touch /opt/venv/.installed \
    && make protos VENV=/opt/venv CC=gcc \
    && test -f gen/native/libeventscan.so && test -f gen/native/libeventcolumns.so \
    && /opt/venv/bin/python -m compileall -q gen

# --- runtime: the virtualenv and the generated code, nothing else.
FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/billing/gen \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TMPDIR=/tmp
RUN groupadd --system --gid 10001 billing \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin billing
COPY --from=build /opt/venv /opt/venv
COPY --from=build /src/gen /opt/billing/gen
WORKDIR /opt/billing
USER 10001:10001
ENTRYPOINT ["python", "-m"]
CMD ["services.gateway"]
