# quotewatch for Cloud Run. Build from the repository root:
#   docker build -t REGION-docker.pkg.dev/PROJECT_ID/quotewatch/quotewatch:TAG .
# The install steps are those of scripts/build-release plus plain pip, which
# tests/quotewatch/test_release_install.py runs without Docker.

FROM python:3.11-slim AS build
# A compiler, so qw-metrics' C fast path is built into its wheel instead of falling back.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir uv
WORKDIR /src
COPY . .
# The two workspace wheels, and requirements.txt pinned to uv.lock (postgres and gcs extras).
RUN scripts/build-release /dist

FROM python:3.11-slim
COPY --from=build /dist /dist
# --no-deps: every dependency is pinned in requirements.txt; nothing is resolved afresh.
RUN pip install --no-cache-dir --no-deps -r /dist/requirements.txt \
    && pip install --no-cache-dir --no-deps /dist/*.whl \
    && rm -rf /dist
RUN useradd --create-home --uid 10001 quotewatch
USER quotewatch
WORKDIR /home/quotewatch
ENV PYTHONUNBUFFERED=1 \
    QW_DATA_DIR=/tmp/quotewatch
# Cloud Run sets PORT (8080) and K_SERVICE; quotewatch then binds 0.0.0.0:$PORT and logs JSON.
EXPOSE 8080
ENTRYPOINT ["quotewatch"]
CMD ["run"]
