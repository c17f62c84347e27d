# syntax=docker/dockerfile:1
# One image for every component: kithost serve | worker | beat | migrate | ping-worker.
# Build: docker build -t kithost .   Run: docker run kithost serve --host 0.0.0.0

# 1. The front ends, built with Node (not in the final image).
FROM node:20-bookworm-slim AS frontends
WORKDIR /app/embed
COPY embed/package.json embed/package-lock.json embed/.npmrc ./
RUN npm ci --no-audit --no-fund
COPY embed/ ./
# The loader and the framed page's script, into /app/platform/kithost/visitor/loader/dist.
RUN npm run build
WORKDIR /app/admin-ui
COPY admin-ui/package.json admin-ui/package-lock.json admin-ui/.npmrc ./
RUN npm ci --no-audit --no-fund
COPY admin-ui/ ./
# The dashboard, into /app/platform/kithost/dashboard/dist (its client is committed).
RUN npm run build

# 2. The Python virtualenv from the hashed lock (build tools stay in this stage).
FROM python:3.11-slim-bookworm AS python
ENV PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
COPY pyproject.toml requirements.lock README.md alembic.ini ./
COPY docker/install.sh docker/install.sh
COPY migrations/ migrations/
COPY platform/ platform/
COPY --from=frontends /app/platform/kithost/visitor/loader/dist/ platform/kithost/visitor/loader/dist/
COPY --from=frontends /app/platform/kithost/dashboard/dist/ platform/kithost/dashboard/dist/
RUN sh docker/install.sh /app /opt/venv \
    && find /opt/venv /app -name __pycache__ -prune -exec rm -rf {} +

# 3. The runtime: Python, the virtualenv and the app; no compilers, no npm, not root.
FROM python:3.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    KITHOST_ENV=production \
    KITHOST_HOST=0.0.0.0 \
    KITHOST_DATA_DIR=/tmp/kithost
RUN groupadd --system --gid 10001 kithost \
    && useradd --system --uid 10001 --gid kithost --no-create-home --shell /usr/sbin/nologin kithost
WORKDIR /app
COPY --from=python /opt/venv /opt/venv
COPY --from=python /app /app
USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["kithost"]
CMD ["serve"]
