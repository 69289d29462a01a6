# One image for every tass service; the TASS_EXTRA build argument picks the TensorFlow build:
#   cpu (the default): the API, migrations and CPU-only workers
#   gpu: CUDA workers (run with the NVIDIA Container Toolkit, e.g. `docker run --gpus all`)
#
#   docker build -t tass:cpu .
#   docker build --build-arg TASS_EXTRA=gpu -t tass:gpu .
#   docker run --rm -p 8000:8000 tass:cpu            # `tass api --host 0.0.0.0`
#   docker run --rm --gpus all tass:gpu worker       # any `tass` command
ARG PYTHON_VERSION=3.11.11
FROM python:${PYTHON_VERSION}-slim-bookworm

ARG TASS_EXTRA=cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app

# The dependencies first, in a layer of their own: rebuilt only when pyproject.toml changes.
COPY pyproject.toml ./
RUN python -c 'import re, sys, tomllib; \
project = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
optional = project.get("optional-dependencies", {}); \
expand = lambda names: [r for n in names for req in optional[n] \
    for r in (expand(re.fullmatch(r"tass\[(.+)\]", req)[1].split(",")) if req.startswith("tass[") else [req])]; \
extras = [name for name in sys.argv[1].split(",") if name]; \
print("\n".join(dict.fromkeys(project["dependencies"] + expand(extras))))' \
      "${TASS_EXTRA}" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# Then the code itself (dependencies are already in place).
COPY alembic.ini README.md* ./
COPY contract ./contract
COPY core ./core
COPY api ./api
COPY worker ./worker
COPY trainer ./trainer
COPY client ./client
COPY operators ./operators
COPY serving ./serving
COPY migrations ./migrations
RUN pip install --no-deps . \
 && useradd --create-home --uid 10001 --user-group tass \
 && mkdir -p /var/lib/tass /data \
 && chown tass:tass /var/lib/tass

# The embedded defaults (SQLite, file queue, local artifacts) live here when no URLs are set.
ENV TASS_DATA_DIR=/var/lib/tass
USER tass
EXPOSE 8000
ENTRYPOINT ["tass"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000"]
