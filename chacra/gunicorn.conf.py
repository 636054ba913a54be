"""Gunicorn settings for serving Chacra (scripts/bench load-mix; scripts/demo and the
Dockerfile can use them too):

    gunicorn -c chacra/gunicorn.conf.py --bind 127.0.0.1:8000

Command-line options override these. Sized for the 2-core development machine,
where a request is CPU-bound Python plus a short PostgreSQL statement on the same
two cores:

- gthread workers, one per core: Python holds the GIL while it builds a response,
  so each process uses at most one core, and PostgreSQL needs the rest. Three
  workers (scripts/bench load-mix, 32 clients, without the concentration grid)
  gave the same throughput as two, about 210 req/s, with a longer tail
  (p99 419–447 ms against 303–410 ms);
- 4 threads each, to overlap database waits; 8 gave a longer tail than 4;
- keep-alive 5 s: browsers and QGIS reuse connections for tiles;
- preload: the application (every view, and the heavy libraries the views import
  lazily, see chacra/wsgi.py) is imported once before the workers fork, so no
  worker's first requests take a second longer than the rest.

CHACRA_WEB_WORKERS and CHACRA_WEB_THREADS change the counts.
"""

from core.env import env_int

wsgi_app = "chacra.wsgi:application"
worker_class = "gthread"
workers = env_int("CHACRA_WEB_WORKERS", 2, minimum=1, maximum=64)
threads = env_int("CHACRA_WEB_THREADS", 4, minimum=1, maximum=64)
keepalive = 5
timeout = 120
preload_app = True
