# One image for every Tocsin service: `docker run tocsin <service>`.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
# Every package pyproject.toml lists (tests/test_compose.py holds them to it).
COPY events ./events
COPY configuration ./configuration
COPY checks ./checks
COPY readmodel ./readmodel
COPY security ./security
COPY runtime ./runtime
COPY services ./services
RUN pip install --no-cache-dir . && useradd --system --uid 10001 tocsin
USER tocsin
ENTRYPOINT ["tocsin"]
CMD ["--help"]
