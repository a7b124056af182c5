# backflow-server image: build stage with the -dev packages, runtime stage with only the shared
# libraries the binaries link. docs/deploy.md shows how to build and run it; deploy/verify-image.sh
# proves it builds and serves without a Docker engine; deploy/tests checks that the values below
# agree with deploy/compose.yaml, deploy/k8s and deploy/systemd.

# ---- build ----
FROM debian:bookworm-slim AS build
WORKDIR /src
# The same package list as a developer machine (one source of truth); apt lists are not kept.
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
# libdnnl-dev's CMake config needs OpenCL's (a Recommends of libdnnl-dev, which install-deps.sh
# skips with --no-install-recommends); a no-op once install-deps.sh lists it.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ocl-icd-opencl-dev \
 && rm -rf /var/lib/apt/lists/*
COPY . .
# What `make install` installs (docs/install.md), staged in /stage: the server, the CLI,
# backflow-load, the protos, the example graphs and the Python package. Tests are not configured
# or built in the image.
RUN cmake --preset release -DBUILD_TESTING=OFF \
 && cmake --build --preset release --target backflow-server backflow backflow-load backflow_python \
 && DESTDIR=/stage cmake --install build/release --prefix /usr/local \
 && strip /stage/usr/local/bin/backflow-server /stage/usr/local/bin/backflow \
      /stage/usr/local/bin/backflow-load

# ---- runtime ----
FROM debian:bookworm-slim
# Runtime libraries of the binaries (from `ldd`; their own dependencies come along), and the
# Python client's interpreter and packages (python3 reads /usr/local/lib/python3.11/dist-packages).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libgrpc++1.51 libprotobuf32 libtbb12 libdnnl2 libspdlog1.10 libgomp1 zlib1g libzip4 libonnx1 \
      libprometheus-cpp-core1.0 libcpp-httplib0.11 \
      python3 python3-grpcio python3-protobuf python3-numpy \
 && rm -rf /var/lib/apt/lists/*
# A fixed uid/gid so Kubernetes' runAsUser/fsGroup and host volume ownership can name it.
RUN groupadd --system --gid 10001 backflow \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/backflow --no-create-home \
      --shell /usr/sbin/nologin backflow \
 && mkdir -p /var/lib/backflow \
 && chown 10001:10001 /var/lib/backflow \
 && chmod 0750 /var/lib/backflow
# /usr/local/bin: the binaries; /usr/local/share/backflow: proto/, models/ (graphs for
# backflow-load and `backflow models create`; the compose load job uses them) and examples/;
# /usr/local/lib/python3.11/dist-packages/backflow: the Python package.
COPY --from=build /stage/usr/local/ /usr/local/

USER 10001:10001
WORKDIR /var/lib/backflow
# One server per data dir: the server flocks /var/lib/backflow/LOCK.
VOLUME ["/var/lib/backflow"]
# 50051: gRPC; 9464: Prometheus metrics over HTTP (docs/observability.md).
EXPOSE 50051 9464
# `backflow` (health checks, exec sessions) talks to the server in this container by default.
ENV BACKFLOW_SERVER=127.0.0.1:50051
# The server drains on SIGTERM (health NOT_SERVING, in-flight calls get the grace, unsaved models
# are checkpointed) and exits 0. Give `docker stop` more than the grace: docker stop --time 30.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=15s --retries=3 \
  CMD ["backflow", "--timeout", "3", "health"]
# 0.0.0.0: the server's own defaults (127.0.0.1) are unreachable from outside the container, for
# gRPC and for the metrics Prometheus scrapes.
# --insecure: serving a non-loopback address without --auth-tokens must be asked for explicitly;
# mount a token file and pass --auth-tokens instead to require tokens (docs/security.md).
CMD ["backflow-server", "--listen=0.0.0.0:50051", "--insecure", "--data-dir=/var/lib/backflow", \
     "--shutdown-grace-ms=20000", "--metrics-listen=0.0.0.0:9464"]
