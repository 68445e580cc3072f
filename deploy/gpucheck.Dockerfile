# syntax=docker/dockerfile:1
# The GPU validation image: kiln-gpucheck with its CUDA checks, on the CUDA
# runtime image (cudart and cuBLASLt). The controller's validation Jobs run it
# under the ServiceAccount kiln-gpucheck; see docs/gpu-validation.md.
#
#   docker build -f deploy/gpucheck.Dockerfile -t ghcr.io/kiln-dev/kiln-gpucheck:0.1.0 .
#
# The CUDA version is the toolkit kiln-gpucheck is developed with; its driver
# requirement (CUDA 13: driver 580 or newer) applies to the GPU nodes. CUDA
# images are Ubuntu-based, so the runtime package names are Ubuntu 24.04's.
ARG CUDA_VERSION=13.0.0
ARG CUDA_OS=ubuntu24.04

FROM nvidia/cuda:${CUDA_VERSION}-devel-${CUDA_OS} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config git \
      libjansson-dev libyaml-dev liblua5.4-dev libssl-dev libcurl4-openssl-dev libmicrohttpd-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# validate/CMakeLists.txt finds /usr/local/cuda/bin/nvcc and builds the
# kernels for the Ampere, Ada, Hopper and Blackwell architectures it supports.
RUN scripts/build.sh build -DKILN_CUDA=ON \
 && strip build/bin/kiln-gpucheck

FROM nvidia/cuda:${CUDA_VERSION}-runtime-${CUDA_OS}
# kiln-gpucheck links jansson, libyaml and libcrypto (kiln_core); NVML is
# loaded at run time from the driver the NVIDIA container runtime mounts.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libjansson4 libyaml-0-2 libssl3t64 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/bin/kiln-gpucheck /usr/local/bin/kiln-gpucheck
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/kiln-gpucheck"]
