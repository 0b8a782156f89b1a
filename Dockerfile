# The acav_assets image: the package and its pinned dependencies, used by the code server,
# the webserver and the daemon (docker-compose.yml). Runs as the unprivileged user acav
# (uid 10001, group 0 so that an arbitrary uid given with `user:` can still write its home).
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/acav
COPY pyproject.toml README.md workspace.yaml ./
COPY acav_assets ./acav_assets
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --gid 0 --home-dir /opt/dagster/home --create-home acav \
    && mkdir -p /data/landing /data/warehouse \
    && chown -R 10001:0 /opt/dagster/home /data && chmod -R g+rwX /opt/dagster/home /data
COPY deploy/dagster.yaml /opt/dagster/home/dagster.yaml
COPY deploy/entrypoint.sh /usr/local/bin/acav-entrypoint
ENV DAGSTER_HOME=/opt/dagster/home \
    ACAV_LANDING=/data/landing \
    ACAV_WAREHOUSE=/data/warehouse
USER 10001
ENTRYPOINT ["acav-entrypoint"]
