# The o2c image: one image for every o2c process (`o2c worker`, `o2c api`, `o2c sandbox`,
# `o2c keys ...`); docker-compose.yml runs it. It holds code only: keys, passwords and
# the codec's key come from the environment at run time (.env, see .env.example).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

# A fixed uid, so volumes and `runAsNonRoot` checks see the same user everywhere.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/o2c o2c

WORKDIR /app
# What the install needs, and the packages pyproject.toml lists; no tests, no docs.
COPY pyproject.toml README.md ./
COPY scripts/install scripts/install
COPY o2c_workflows o2c_workflows
COPY o2c_domain o2c_domain
COPY activities activities
COPY adapters adapters
COPY o2c_service o2c_service
COPY o2c_bench o2c_bench
COPY o2c_sandbox o2c_sandbox
# scripts/setup.sh's install step, without the test extras.
RUN sh scripts/install python

USER 10001:10001
# The code is root's and read-only to o2c; what a process may write goes under its home.
ENV O2C_DATA_DIR=/home/o2c/.o2c
WORKDIR /home/o2c

ENTRYPOINT ["o2c"]
CMD ["--help"]
