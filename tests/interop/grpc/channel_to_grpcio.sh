#!/usr/bin/env bash
# Our shared channel (through `h2mux rpc`) calling a real grpcio server:
#   channel_to_grpcio.sh H2MUX_BIN URL [-k]
# URL is the grpcio echo server (tests/interop/grpc/echo_peer.py server), http:// or https://
# (-k: self-signed). Checks all four Echo methods, ASCII and -bin metadata both ways,
# trailing metadata, an error status, a deadline, gzip requests and gzip replies, a
# 100 kB message. Prints one line per check; exits non-zero on any failure.
set -uo pipefail
BIN=$1; URL=$2; shift 2
fails=0
expect() { # NAME EXPECTED-STDOUT ARGS...
  local name=$1 want=$2; shift 2
  local got
  got=$(timeout 20 "$BIN" rpc "$URL" "$@" "${K[@]}" 2>/dev/null)
  if [ "$got" = "$want" ]; then echo "ok   $name"; else
    echo "FAIL $name"; echo "  want: $(printf %q "$want" | head -c 300)"
    echo "  got:  $(printf %q "$got" | head -c 300)"; fails=$((fails+1)); fi
}
K=("$@")
nl=$'\n'
expect "unary" "reply 0: hello${nl}status OK" Unary -p hello
expect "unary: ascii and -bin metadata echoed, trailing metadata" \
  "metadata x-h2mux-test: ascii value${nl}metadata x-blob-bin: 0001feff${nl}reply-encoding identity${nl}reply 0: m${nl}trailer x-trailer: done${nl}status OK" \
  Unary -p m -v -H "x-h2mux-test: ascii value" -H "x-blob-bin: 0001feff"
expect "server streaming: repeat replies" "reply 0: s${nl}reply 1: s${nl}reply 2: s${nl}reply 3: s${nl}status OK" \
  ServerStream -p s --repeat 4
expect "client streaming: payloads concatenated" "reply 0: abcdef${nl}status OK" \
  ClientStream -p a -p bc -p def
expect "bidi: each request echoed in order" "reply 0: x${nl}reply 1: y${nl}reply 2: x${nl}reply 3: y${nl}status OK" \
  Bidi -p x -p y --count 2
expect "error status reaches the channel" "status NOT_FOUND: failure requested by the client" \
  Unary -H "x-h2mux-fail: NOT_FOUND"
expect "deadline is enforced" "status DEADLINE_EXCEEDED: deadline exceeded" \
  Unary -H "x-h2mux-delay-ms: 3000" --timeout 0.3
big=$(head -c 100000 /dev/zero | tr '\0' z)
expect "gzip request and gzip reply, 100 kB" "metadata x-h2mux-compress: gzip${nl}reply-encoding gzip${nl}reply 0: ${big}${nl}trailer x-trailer: done${nl}status OK" \
  Unary -p "$big" --gzip -v -H "x-h2mux-compress: gzip"
expect "unknown method is UNIMPLEMENTED" "status UNIMPLEMENTED: Method not found!" /h2mux.echo.v1.Echo/Nope
echo "$fails failed"
exit $((fails > 0))
