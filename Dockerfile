# syntax=docker/dockerfile:1
# The one image of every todo-chatbot service: todo-host, the shared lua/ and the
# bundles under services/ (each with its SQL migrations). The service is chosen by
# the command's arguments, e.g. `run services/websocket` or `migrate services/api`.
#
# Stage "build": Debian 12 with the packages scripts/bootstrap installs (the same
#   list as a developer's machine and CI), then a Release build of todo-host.
# Stage "rootfs": the Debian packages scripts/runtime-packages derives from
#   `ldd todo-host` (plus dlopen'd plugins), unpacked at the versions the binary
#   was built against, and the application files. scripts/check-image checks that
#   list against ldd and runs the binary on it (make test); hadolint lints this file.
# Final stage: distroless cc-debian12 (Debian 12's libc, libstdc++, OpenSSL,
#   CA certificates, tzdata; no shell, no package manager), non-root (65532),
#   nothing written at run time (a read-only root file system works; /tmp is
#   the only writable place the chart mounts). About 40 MB: the layer added to
#   the base measures 16 MB unpacked (docs/operations.md).

FROM debian:12-slim AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive BOOTSTRAP_DEPLOY_TOOLS=0
WORKDIR /src
COPY scripts/bootstrap scripts/bootstrap
RUN apt-get update -qq && scripts/bootstrap && rm -rf /var/lib/apt/lists/*
COPY CMakeLists.txt ./
COPY cmake cmake
COPY core core
COPY lua lua
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr/local \
 && cmake --build build --target todo-host \
 && strip build/todo-host \
 && build/todo-host --version

FROM build AS rootfs
COPY scripts/runtime-packages scripts/runtime-packages
COPY services services
WORKDIR /debs
# Each package at the version the build linked against; its control file goes to
# status.d (the distroless convention) so image scanners see what is inside.
RUN apt-get update -qq \
 && /src/scripts/runtime-packages /src/build/todo-host > /packages.txt \
 && cat /packages.txt \
 && xargs apt-get download -qq < /packages.txt \
 && mkdir -p /rootfs/var/lib/dpkg/status.d \
 && for deb in ./*.deb; do \
      dpkg-deb -x "$deb" /rootfs; \
      dpkg-deb -f "$deb" > "/rootfs/var/lib/dpkg/status.d/$(dpkg-deb -f "$deb" Package)"; \
    done \
 && rm -rf /rootfs/usr/share/doc /rootfs/usr/share/man /rootfs/usr/share/lintian /rootfs/usr/share/info \
       /rootfs/usr/share/locale \
 && install -D -m 0755 /src/build/todo-host /rootfs/usr/local/bin/todo-host \
 && mkdir -p /rootfs/app \
 && cp -r /src/lua /src/services /rootfs/app/ \
 && rm -rf /var/lib/apt/lists/*

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=rootfs /rootfs/ /
WORKDIR /app
ENV TODO_LUA_ROOT=/app/lua \
    PORT=8080 \
    WORKERS=1 \
    TMPDIR=/tmp
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/todo-host"]
CMD ["run", "services/api"]
