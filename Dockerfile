FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md ./
COPY fhir_server ./fhir_server
COPY mappings ./mappings
COPY profiles ./profiles
RUN pip install --no-cache-dir . && useradd --system --home-dir /app fhir
USER fhir

EXPOSE 8080
# MONGODB_URI must name a MongoDB replica set (see docker-compose.yml).
CMD ["fhir-server", "serve", "--host", "0.0.0.0", "--port", "8080"]
