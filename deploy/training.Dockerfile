# syntax=docker/dockerfile:1
#
# A training image for the compose demo: trainsentry (its log tap and producers) plus the
# examples and what they need (the `examples` extra: PyTorch, scikit-learn). Build from the
# repository root:
#
#     docker build -f deploy/training.Dockerfile -t trainsentry-training:0.1.0 .
#
# Your own training image needs only `pip install trainsentry` (with the `torch` extra for the
# PyTorch hook) on top of what it already has.

FROM python:3.11-slim AS wheel
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY protocol/ protocol/
COPY producers/ producers/
COPY consumers/ consumers/
COPY rules/ rules/
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 trainsentry \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
            --shell /usr/sbin/nologin trainsentry

# The PyTorch wheel from PyPI bundles CUDA libraries (several GB). For a CPU-only image, point pip
# at a CPU wheel index: --build-arg PIP_EXTRA_INDEX_URL=<index URL>.
ARG PIP_EXTRA_INDEX_URL=""
RUN --mount=type=bind,from=wheel,source=/wheels,target=/wheels \
    pip install "$(ls /wheels/trainsentry-*.whl)[examples]"

WORKDIR /app
COPY examples/ examples/

USER 10001:10001
ENTRYPOINT ["trainsentry"]
# The log tap runs the training command and publishes its stdout/stderr lines as the trial; the
# script publishes its tensors under the same trial.
CMD ["tap", "--trial", "digits", "--", \
     "python", "examples/train_digits.py", "--variant", "healthy", "--trial", "digits"]
