# syntax=docker/dockerfile:1
# Build stage: wheels for the app and its dependencies, compiled once.
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends build-essential git && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY core core
COPY integrations integrations
COPY agents agents
COPY bot bot
COPY web web
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Runtime stage: slim, non-root, only what runs.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends git curl && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 responder
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
WORKDIR /app
COPY app.py alembic.ini services.example.yaml ./
COPY examples examples
ENV APP_ENV=prod \
    DATA_DIR=/app/var \
    CREWAI_DISABLE_TELEMETRY=true \
    CREWAI_DISABLE_TRACKING=true \
    CREWAI_TRACING_ENABLED=false \
    CREWAI_DISABLE_VERSION_CHECK=true \
    HOST=0.0.0.0 \
    PORT=8000 \
    PYTHONUNBUFFERED=1
RUN mkdir -p /app/var && chown responder /app/var
USER responder
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --retries=3 CMD curl -fsS "http://127.0.0.1:${PORT}/healthz" || exit 1
# Same commands as the Procfile: web by default, `python app.py worker` for workers.
CMD ["python", "app.py", "serve"]
