# Chacra API image: Debian 12 (bookworm) with the GDAL, GEOS and PROJ libraries
# GeoDjango loads at run time. Used by docker-compose.yml; see README, "Docker Compose".
FROM python:3.11-slim-bookworm

# The code runs from /app (PYTHONPATH), not from site-packages: the demo generator
# reads fixtures/towns.csv from the source tree, which the installed package lacks.
# This also keeps .secret_key, .static/ and .demo-tokens under /app.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app

RUN apt-get update \
 && apt-get install -y --no-install-recommends gdal-bin libgdal32 libgeos-c1v5 libproj25 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY . /app

# `pip install .` brings the dependencies and the `chacra` command. Static files are
# collected at build time with a throw-away key, so no secret ends up in the image.
RUN pip install . \
 && SECRET_KEY=build-only chacra collectstatic --noinput -v 0 \
 && useradd --system --home-dir /app --shell /usr/sbin/nologin chacra \
 && chown -R chacra:chacra /app

USER chacra
EXPOSE 8000

# Every start: apply migrations, load the demo data (a no-op once loaded; prints the
# demo tokens each time), then run the given command, by default gunicorn.
ENTRYPOINT ["/bin/sh", "-c", "chacra migrate --noinput && chacra demo-data --tokens-file /app/.demo-tokens && exec \"$@\"", "chacra-entrypoint"]
CMD ["gunicorn", "-c", "chacra/gunicorn.conf.py", "--bind", "0.0.0.0:8000", "--access-logfile", "-"]
