# churnwire: one image for every process (gateway, worker, cdc, insights, setup).
# Build: docker build -t churnwire:0.1.0 .   Run: docker run churnwire:0.1.0 gateway
# Linted offline by `make deploy-check` (hadolint and checkov); no Docker engine runs there.

# --- build stage: compile wheels into a virtual environment -----------------------------
FROM python:3.11.7-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/churnwire
COPY pyproject.toml README.md ./
COPY churnwire ./churnwire
RUN /opt/churnwire/bin/pip install --no-compile .

# --- runtime stage: the venv, a Java 17 runtime for Debezium, a non-root user -----------
FROM python:3.11.7-slim-bookworm
# Debian security updates replace exact package versions within days, so pinning them would
# break rebuilds; the base image tag fixes the distribution release instead.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s "$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")" /usr/lib/jvm/current \
    && groupadd --gid 10001 churnwire \
    && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin churnwire \
    && mkdir -p /var/lib/churnwire \
    && chown 10001:10001 /var/lib/churnwire
COPY --from=build /opt/churnwire /opt/churnwire
ENV PATH=/opt/churnwire/bin:$PATH \
    JAVA_HOME=/usr/lib/jvm/current \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    CHURNWIRE_HOME=/var/lib/churnwire \
    CHURNWIRE_GATEWAY_HOST=0.0.0.0 \
    CHURNWIRE_METRICS_HOST=0.0.0.0
WORKDIR /var/lib/churnwire
USER 10001:10001
EXPOSE 8080 9466 9467 9468
# Each process has its own probe in Kubernetes (see charts/churnwire); the gateway's is this.
HEALTHCHECK --interval=30s --timeout=3s \
  CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
ENTRYPOINT ["churnwire"]
CMD ["gateway"]
