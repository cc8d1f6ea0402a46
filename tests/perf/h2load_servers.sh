#!/usr/bin/env bash
# issue 5 §6: `h2load -c 100 -m 100` (one h2load thread on CPU 0, the server on CPU 1) against
# `h2mux serve`, nginx and h2o serving the same 100-byte file over h2c. A benchmark, not a
# test: prints requests/s per server. Needs h2load (nghttp2-client), nginx, h2o (Debian).
#   usage: tests/perf/h2load_servers.sh [SECONDS]   (default 10 s per server, after 2 s warm-up)
set -euo pipefail
secs=${1:-10}
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$root/target/release/h2mux
[ -x "$bin" ] || { echo "build first: cargo build --release -p h2mux-cli" >&2; exit 2; }
for t in h2load nginx h2o taskset; do
  command -v $t >/dev/null || { echo "missing: $t (apt-get install nghttp2-client nginx-light h2o)" >&2; exit 2; }
done
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM
mkdir -p "$work/www"
chmod 755 "$work" "$work/www"   # nginx and h2o workers drop root
head -c 100 /dev/zero > "$work/www/small"

cat > "$work/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/t1; proxy_temp_path $work/t2; fastcgi_temp_path $work/t3;
  uwsgi_temp_path $work/t4; scgi_temp_path $work/t5;
  http2_max_concurrent_streams 128;
  keepalive_requests 1000000000;   # else nginx ends each connection after 1000 requests
  server { listen 127.0.0.1:18081 http2; root $work/www; }
}
CONF
cat > "$work/h2o.conf" <<CONF
listen:
  host: 127.0.0.1
  port: 18082
num-threads: 1
hosts:
  default:
    paths:
      /:
        file.dir: $work/www
CONF

wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }

taskset -c 1 "$bin" serve --h2c --listen 127.0.0.1:18080 --root "$work/www" --max-connections-per-ip 10000 > "$work/h2mux.log" 2>&1 & pids+=($!)
taskset -c 1 nginx -c "$work/nginx.conf" & pids+=($!)
taskset -c 1 h2o -c "$work/h2o.conf" > "$work/h2o.log" 2>&1 & pids+=($!)
wait_port 18080; wait_port 18081; wait_port 18082

echo "| server | requests/s | succeeded | failed | mean time per request |"
echo "|---|---:|---:|---:|---:|"
# h2mux twice: its file handler (--root, a file read per request, as the others do) and its
# built-in /bytes/100 (the same 100 bytes from memory).
for s in h2mux-file:18080:/small h2mux-bytes:18080:/bytes/100 nginx:18081:/small h2o:18082:/small; do
  IFS=: read -r name port path <<<"$s"
  out=$(taskset -c 0 h2load -t 1 -c 100 -m 100 --warm-up-time=2 -D "$secs" "http://127.0.0.1:$port$path" 2>&1)
  rps=$(grep -oP 'finished in [^,]+, \K[0-9.]+(?= req/s)' <<<"$out" || echo "?")
  ok=$(grep -oP '\d+(?= succeeded)' <<<"$out" | head -1 || echo "?")
  bad=$(grep -oP '\d+(?= failed)' <<<"$out" | head -1 || echo "?")
  mean=$(grep -P '^time for request:' <<<"$out" | awk '{print $6}' || echo "?")
  echo "| $name | $rps | $ok | $bad | $mean |"
done
