# One image for every service of the stack: the API, the CPU checks worker and (built with CUDA
# wheels) the GPU eval worker. Build the GPU flavour with
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 -t golfcheck:gpu .
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GOLFCHECK_DATA_DIR=/data

WORKDIR /app
# lrzip decodes the per-group artifact container (2026-04-27 records); nothing else is native.
RUN apt-get update && apt-get install -y --no-install-recommends lrzip && rm -rf /var/lib/apt/lists/*
# torch first and alone: it is the big layer and changes least often.
RUN pip install "torch==2.13.0" --index-url "${TORCH_INDEX}"
COPY pyproject.toml alembic.ini ./
COPY api ./api
COPY worker ./worker
COPY gepa ./gepa
COPY migrations ./migrations
RUN pip install . && pip install "flower>=2.0"

# Never run submissions' surroundings as root; the data volume belongs to this user.
RUN useradd --create-home --uid 10001 golfcheck && mkdir -p /data && chown golfcheck /data
USER golfcheck
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"
CMD ["golfcheck", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-worker"]
