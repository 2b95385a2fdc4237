# The project in a container. CPU by default:
#     docker build -t lightning-template .
#     docker run --rm -v "$PWD/runs:/project/runs" lightning-template fit trainer.max_epochs=1
# A CUDA image: a CUDA base with Python 3.10+ and torch's CUDA wheel, e.g.
#     docker build --build-arg BASE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 \
#         --build-arg TORCH="torch --index-url https://download.pytorch.org/whl/cu128" -t lightning-template:cuda .
#     docker run --rm --gpus all lightning-template:cuda fit trainer=gpu
# The test suite in the build (what CI runs; the image is built only if it passes):
#     docker build --target test .
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS project
# the CPU wheel by default: a bare `torch` would pull several GB of CUDA libraries
ARG TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 DEBIAN_FRONTEND=noninteractive
# make and git for the project's commands; python3-venv where the base is a plain OS image
RUN apt-get update \
    && apt-get install -y --no-install-recommends make git python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /project
COPY pyproject.toml Makefile README.md ./
COPY src ./src
COPY configs ./configs
RUN make install PYTHON=python3 TORCH="${TORCH}"
COPY . .
ENV PATH=/project/.venv/bin:$PATH
CMD ["fit", "--help"]

FROM project AS test
# the sweep tests' PostgreSQL server (tests/database_server.py), as .ci/run installs it
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql \
    && rm -rf /var/lib/apt/lists/*
ENV LIGHTNING_TEMPLATE_REQUIRE_POSTGRES=1
RUN make lint && make test
