# The acav_assets image: the package and its pinned dependencies, used by the code server,
# the webserver and the daemon (docker-compose.yml).
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/acav
COPY pyproject.toml README.md workspace.yaml ./
COPY acav_assets ./acav_assets
RUN pip install --no-cache-dir . && mkdir -p /opt/dagster/home
COPY deploy/dagster.yaml /opt/dagster/home/dagster.yaml
ENV DAGSTER_HOME=/opt/dagster/home \
    ACAV_LANDING=/data/landing \
    ACAV_WAREHOUSE=/data/warehouse
