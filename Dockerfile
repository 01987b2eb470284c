# quotewatch's production image (Cloud Run). Build from the repository root:
#   docker build -t quotewatch .        or        gcloud builds submit --tag IMAGE .
# See deploy/cloudrun/README.md for the whole deployment.

# --- builder: wheels + pinned requirements -------------------------------------------------
FROM python:3.11-slim AS builder

# gcc and libc6-dev compile qw-metrics' C fast path (qw_metrics._speedups). The extension is
# optional at build time, so without a compiler the wheel would silently be pure Python.
# The Python headers come with the official python image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*

# scripts/build-release drives uv (uv build, uv export --locked).
RUN pip install --no-cache-dir uv

WORKDIR /src
# The whole workspace (filtered by .dockerignore): uv export needs uv.lock and every member's
# pyproject.toml, uv build needs the packages' sources.
COPY . .

# Writes /dist/qw_metrics-*.whl, /dist/quotewatch-*.whl and /dist/requirements.txt (every
# third-party dependency pinned to uv.lock, with the postgres and gcs extras).
RUN scripts/build-release /dist

# --- runtime: plain pip, no uv, no compiler ------------------------------------------------
FROM python:3.11-slim

COPY --from=builder /dist /dist

# --no-deps twice: requirements.txt is already the complete, locked closure, so pip must not
# resolve anything itself (nothing newer than uv.lock sneaks in); then the two wheels, whose
# dependencies that closure already holds. The last step fails the build if the C fast path
# did not compile.
RUN pip install --no-cache-dir --no-deps -r /dist/requirements.txt \
    && pip install --no-cache-dir --no-deps /dist/*.whl \
    && python -c "import qw_metrics._speedups"

# A fixed non-root uid: the app needs no privileges, and a numeric USER lets runtimes check
# "not root" without reading /etc/passwd. Its home is the working directory, so the default
# data dir (./.quotewatch) is writable when QW_DATA_DIR is not set.
RUN useradd --uid 10001 --user-group --create-home --shell /usr/sbin/nologin quotewatch
WORKDIR /home/quotewatch
USER 10001

# Unbuffered stdout/stderr: each log line reaches Cloud Logging as it is written, and nothing
# is lost in a buffer when the container is killed after SIGTERM.
ENV PYTHONUNBUFFERED=1

# Documentation only: Cloud Run sends traffic to $PORT (8080), which quotewatch listens on.
EXPOSE 8080

# Exec form: quotewatch is PID 1 and receives Cloud Run's SIGTERM itself (a shell would not
# forward it), so it can flush storage within the 10 s grace period.
ENTRYPOINT ["quotewatch"]
CMD ["run"]
