# mlmon image: the `mlmon` CLI on Python 3.11 with the PostgreSQL driver.
#
#   docker build -t mlmon .
#   docker run --rm -p 8000:8000 mlmon            # serve the bundled example on SQLite
#   docker run --rm mlmon check-config /etc/mlmon/mlmon.yaml
#
# docker-compose.yml runs the same image as `migrate`, `web` (replicated) and `worker` on PostgreSQL.
# pip installs from whatever package index the build environment configures; nothing is pinned here.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Build context is an allowlist (.dockerignore): the packaging metadata and the three packages.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY collectors ./collectors
COPY alerts ./alerts
RUN pip install ".[postgres,focus]" \
    && cd / \
    && rm -rf /src

# Unprivileged runtime user; its home holds the SQLite file when no MLMON_DATABASE_URL is given.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /var/lib/mlmon \
        --shell /usr/sbin/nologin mlmon
COPY examples/mlmon.yaml /etc/mlmon/mlmon.yaml

ENV MLMON_CONFIG=/etc/mlmon/mlmon.yaml \
    MLMON_DATABASE_URL=sqlite:////var/lib/mlmon/mlmon.db \
    MLMON_LISTEN=0.0.0.0:8000

USER 10001:10001
WORKDIR /var/lib/mlmon
EXPOSE 8000

ENTRYPOINT ["mlmon"]
CMD ["serve"]
