#!/bin/sh
# Entrypoint of the hello demo image: writes /www/index.html naming this container's
# hostname (the pod name under mkube) and /www/healthz, then serves /www on $PORT
# (default 80) until it gets SIGTERM or SIGINT, which end it with status 0 at once.
set -eu
port="${PORT:-80}"
host="$(hostname)"
addr="$(hostname -i 2>/dev/null || true)"
mkdir -p /www
cat > /www/index.html <<HTML
<!doctype html>
<html>
<head><title>hello from ${host}</title></head>
<body>
<h1>Hello from ${host}</h1>
<p>hostname: ${host}</p>
<p>address: ${addr}</p>
<p>${MESSAGE:-Served by the mkube hello image.}</p>
</body>
</html>
HTML
echo ok > /www/healthz
echo "hello: serving /www for ${host} on port ${port}"
# As PID 1 the shell has no default action for SIGTERM, and neither would httpd:
# run httpd as a child and stop it from a trap so `docker stop` and the kubelet's
# graceful stop end the container promptly instead of waiting for SIGKILL.
httpd -f -v -p "${port}" -h /www &
pid=$!
trap 'kill -TERM "${pid}" 2>/dev/null || true; wait "${pid}" 2>/dev/null || true; exit 0' TERM INT
wait "${pid}"
