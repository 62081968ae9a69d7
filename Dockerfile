# The slim serving image: ONNX Runtime + FastAPI/uvicorn + finslm, no torch/DVC/SHAP/LIME/captum.
#
#   docker build -t finslm-serve .                                   # bakes exports/minilm in
#   docker build -t finslm-serve --build-arg MODEL=exports/minilm-pruned .
#   docker run --rm -p 8000:8000 finslm-serve
#   docker run --rm -p 8000:8000 -v "$PWD/exports/minilm:/model:ro" finslm-serve   # mounted
#
# Inside, the server binds 0.0.0.0:8000 (the container's network is the boundary); publish the
# port on 127.0.0.1 (-p 127.0.0.1:8000:8000) unless it should be reachable from elsewhere.
# Set FINSLM_API_KEY (-e FINSLM_API_KEY=...) to require 'Authorization: Bearer <key>'.
# Under a CPU limit (Kubernetes resources.limits.cpu, docker --cpus) set FINSLM_THREADS to it:
# onnxruntime otherwise sizes its pool by the host's cores and is throttled.
# BASE_IMAGE: any Debian-like image with Python 3.11, `python3 -m venv` and useradd.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/venv
COPY serve/requirements.txt /tmp/requirements.txt
COPY pyproject.toml README.md /src/
COPY src /src/src
# --no-deps: pyproject's dependencies are the full pipeline's (torch, DVC, ...); the server needs
# only serve/requirements.txt, installed first. Behind a TLS-intercepting proxy, hand pip its CA
# bundle as a build secret: --secret id=pip_ca,src=/etc/ssl/certs/ca-certificates.crt
RUN --mount=type=secret,id=pip_ca \
    if [ -s /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
 && /opt/venv/bin/pip install -r /tmp/requirements.txt \
 && /opt/venv/bin/pip install --no-deps /src \
 && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} + \
 && rm -rf /opt/venv/lib/python3.11/site-packages/pip /opt/venv/bin/pip*

FROM ${BASE_IMAGE}
ARG MODEL=exports/minilm
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin finslm
COPY --from=build /opt/venv /opt/venv
COPY --chown=root:root ${MODEL} /model
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TOKENIZERS_PARALLELISM=false \
    HOME=/tmp
USER finslm
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python3", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status != 200)"]
# exec form: uvicorn is PID 1 and gets SIGTERM directly, so `docker stop` drains in-flight requests.
CMD ["finslm", "serve", "--model", "/model", "--host", "0.0.0.0", "--port", "8000"]
