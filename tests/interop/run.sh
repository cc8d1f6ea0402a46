#!/usr/bin/env bash
# Interop with real HTTP/2 peers against `h2mux serve` (h2c), and `h2mux get` against nginx.
#   curl --http2-prior-knowledge: status, body, sha256 of a large body, POST echo
#   nghttp (nghttp2-client): a request with verbose frame log
#   h2load: 2 000 requests over 10 connections, 100 streams each, all must succeed
#   python httpx[http2]: GET + POST echo through a second, independent HTTP/2 stack
#   h2mux get against nginx serving a file over h2c: sha256 must match
#   h2mux conformance against h2mux serve: "N passed, N failed", none may fail
#   gRPC: grpcio client -> h2mux serve and h2mux's channel (h2mux rpc) -> grpcio server, h2c and TLS
# Needs: curl nghttp2-client nginx-light (apt), httpx[http2] (pip). Run from the repo root
# after `cargo build --release`. Prints one line per check; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=${H2MUX_BIN:-target/release/h2mux}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$work"; }
trap cleanup EXIT
fails=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails+1)); fi; }

"$BIN" serve --listen 127.0.0.1:0 > "$work/serve.out" 2> "$work/serve.err" &
pids+=($!)
for _ in $(seq 50); do grep -q "listening on" "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/^listening on //p' "$work/serve.out" | head -1)
[ -n "$addr" ] || { echo "FAIL h2mux serve did not start"; cat "$work/serve.err"; exit 1; }
echo "h2mux serve on $addr"

N=$((64 * 1024 * 1024))
expect=$(head -c $N /dev/zero | sha256sum | cut -d' ' -f1)
check "curl: GET / is 200 over HTTP/2" \
  '[ "$(curl -s --http2-prior-knowledge -o /dev/null -w "%{http_code} %{http_version}" http://$addr/)" = "200 2" ]'
check "curl: 64 MiB body sha256" \
  '[ "$(curl -s --http2-prior-knowledge http://$addr/bytes/$N | sha256sum | cut -d" " -f1)" = "$expect" ]'
head -c 3000000 /dev/urandom > "$work/up.bin"
check "curl: POST /echo returns the body" \
  'curl -s --http2-prior-knowledge --data-binary @$work/up.bin http://$addr/echo | cmp -s - $work/up.bin'
check "curl: HTTP/1.1 gets 505" \
  '[ "$(curl -s --http1.1 -o /dev/null -w "%{http_code}" http://$addr/)" = "505" ]'
check "nghttp: GET /bytes/1000000 with frame log" \
  'nghttp -v http://$addr/bytes/1000000 > $work/nghttp.log 2>&1 && grep -q "END_STREAM" $work/nghttp.log'
check "h2load: 2000 requests, 10 connections x 100 streams, all 2xx" \
  'h2load -n 2000 -c 10 -m 100 http://$addr/bytes/1000 > $work/h2load.log 2>&1 && grep -q "2000 succeeded, 0 failed, 0 errored" $work/h2load.log'
check "python httpx[http2]: GET and POST over HTTP/2" \
  'python3 - "$addr" <<"PY"
import sys, httpx
addr = sys.argv[1]
with httpx.Client(http1=False, http2=True, base_url=f"http://{addr}") as c:
    r = c.get("/bytes/100000")
    assert r.http_version == "HTTP/2" and r.status_code == 200 and len(r.content) == 100000, r
    r = c.post("/echo", content=b"x" * 70000)
    assert r.status_code == 200 and r.content == b"x" * 70000, r
PY'

# Our own conformance suite (RFC 9113 / RFC 7541 MUSTs) against this h2mux serve: prints
# "N passed, N failed"; every case must pass.
check "conformance suite against h2mux serve: $("$BIN" conformance --target "$addr" > "$work/conformance.log" 2>&1; tail -1 "$work/conformance.log")" \
  'tail -1 "$work/conformance.log" | grep -q " 0 failed" || { cat "$work/conformance.log"; false; }'

check "grpcio client: all four Echo methods, metadata, gzip, status, deadline, health, UNIMPLEMENTED" \
  'python3 tests/interop/grpc/echo_peer.py client-h2mux $addr > $work/grpc.log 2>&1 || { cat $work/grpc.log; false; }'

# TLS: h2mux serve with an openssl-made certificate; curl --http2 over TLS (ALPN h2).
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -days 1 \
  -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost" 2>/dev/null
"$BIN" serve --listen 127.0.0.1:0 --cert "$work/cert.pem" --key "$work/key.pem" > "$work/tls.out" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q "listening on" "$work/tls.out" 2>/dev/null && break; sleep 0.1; done
tport=$(sed -n 's/^listening on 127.0.0.1://p' "$work/tls.out" | head -1)
check "curl --http2 over TLS: ALPN h2, 16 MiB body sha256" \
  '[ "$(curl -sk --http2 https://localhost:$tport/bytes/16777216 | sha256sum | cut -d" " -f1)" = "$(head -c 16777216 /dev/zero | sha256sum | cut -d" " -f1)" ] && [ "$(curl -sk --http2 -o /dev/null -w "%{http_version}" https://localhost:$tport/)" = "2" ]'
check "h2mux get https --insecure" \
  '[ "$("$BIN" get -k https://localhost:$tport/bytes/100000 | wc -c)" = "100000" ]'
check "h2mux get https without --insecure refuses a self-signed server" \
  '! "$BIN" get https://localhost:$tport/ > /dev/null 2>&1'
check "grpcio client over TLS: all four Echo methods, metadata, gzip, status, deadline, health" \
  'timeout 60 python3 tests/interop/grpc/echo_peer.py client-h2mux localhost:$tport --ca $work/cert.pem > $work/grpc-tls.log 2>&1 || { cat $work/grpc-tls.log; false; }'

# Our channel (through h2mux rpc) calling real grpcio servers, over h2c and TLS.
python3 tests/interop/grpc/echo_peer.py server 0 > "$work/gs.out" 2> "$work/gs.err" &
pids+=($!)
python3 tests/interop/grpc/echo_peer.py server 0 --cert "$work/cert.pem" --key "$work/key.pem" > "$work/gst.out" 2> "$work/gst.err" &
pids+=($!)
for _ in $(seq 100); do grep -q "listening on" "$work/gs.out" && grep -q "listening on" "$work/gst.out" && break; sleep 0.1; done
gaddr=$(sed -n 's/^listening on //p' "$work/gs.out" | head -1)
gtport=$(sed -n 's/^listening on 127.0.0.1://p' "$work/gst.out" | head -1)
check "h2mux channel -> grpcio server (h2c): four methods, metadata, trailers, status, deadline, gzip" \
  'timeout 120 bash tests/interop/grpc/channel_to_grpcio.sh "$BIN" http://$gaddr > $work/ch.log 2>&1 || { cat $work/ch.log $work/gs.err; false; }'
check "h2mux channel -> grpcio server (TLS): the same" \
  'timeout 120 bash tests/interop/grpc/channel_to_grpcio.sh "$BIN" https://localhost:$gtport -k > $work/cht.log 2>&1 || { cat $work/cht.log $work/gst.err; false; }'

# h2mux get against nginx (h2c).
mkdir -p "$work/www" && head -c 20000000 /dev/urandom > "$work/www/file.bin"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/nginx.conf" <<NGX
daemon off; worker_processes 1; error_log $work/nginx.err; pid $work/nginx.pid;
events {}
http { access_log off; client_body_temp_path $work; proxy_temp_path $work; fastcgi_temp_path $work;
  uwsgi_temp_path $work; scgi_temp_path $work;
  server { listen 127.0.0.1:$port http2; root $work/www; } }
NGX
nginx -c "$work/nginx.conf" &
pids+=($!)
for _ in $(seq 50); do curl -s --http2-prior-knowledge -o /dev/null "http://127.0.0.1:$port/file.bin" && break; sleep 0.1; done
check "h2mux get against nginx: 20 MB file sha256" \
  '"$BIN" get http://127.0.0.1:$port/file.bin -o $work/got.bin 2>/dev/null && [ "$(sha256sum < $work/got.bin)" = "$(sha256sum < $work/www/file.bin)" ]'

echo "$fails failed"
exit $((fails > 0))
