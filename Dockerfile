# Multi-stage: build a wheel-installed venv, then a slim non-root runtime.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
RUN python -m venv /opt/kabinet
COPY pyproject.toml README.md ./
COPY backend ./backend
COPY signing ./signing
COPY push ./push
RUN /opt/kabinet/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/kabinet/bin/pip install --no-cache-dir .
COPY pwa ./pwa
RUN apt-get update && apt-get install -y --no-install-recommends fonts-dejavu-core \
 && /opt/kabinet/bin/python pwa/build.py

FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-dejavu-core softhsm2 openssl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --home-dir /var/lib/kabinet kabinet
COPY --from=build /opt/kabinet /opt/kabinet
COPY --from=build /src/pwa/dist /app/pwa/dist
ENV PATH=/opt/kabinet/bin:$PATH \
    KABINET_DATA_DIR=/var/lib/kabinet/data \
    KABINET_PWA_DIR=/app/pwa/dist \
    PYTHONUNBUFFERED=1
# Production: KABINET_DATABASE_URL=postgresql://user@db/kabinet, secrets by env or volume.
USER kabinet
WORKDIR /var/lib/kabinet
EXPOSE 8000
CMD ["sh", "-c", "kabinet migrate && exec kabinet serve --host 0.0.0.0 --port 8000 --workers ${KABINET_WORKERS:-2}"]
