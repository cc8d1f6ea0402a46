#!/usr/bin/env python3
"""A real gRPC peer (grpcio) for h2mux's interop tests, speaking proto/echo.proto.

  echo_peer.py client HOST:PORT [--ca PEM]
                                  call all four Echo methods on a server and check the answers:
                                  deadlines, metadata (ASCII and -bin), an error status, gzip;
                                  over TLS (target localhost:PORT) when --ca names its root
  echo_peer.py client-h2mux H:P [--ca PEM]
                                  the same plus h2mux serve's health service and UNIMPLEMENTED
  echo_peer.py server [PORT] [--cert PEM --key PEM]
                                  serve Echo (prints "listening on 127.0.0.1:PORT"), over TLS
                                  with --cert/--key, so h2mux's channel can call a real gRPC
                                  server (tests/interop/grpc/channel_to_grpcio.sh)

Test conventions both echo servers (this one and h2mux's) follow: request metadata whose key
starts with "x-" is echoed back as initial metadata; "x-h2mux-fail: CODE" makes the call fail
with that status; "x-h2mux-delay-ms: N" delays the answer (for deadline tests). This server
also compresses its replies with gzip when asked by "x-h2mux-compress: gzip" and sends the
trailing metadata "x-trailer: done" on every successful call.

The stubs are generated from proto/echo.proto at start (grpc_tools.protoc) into a temp dir.
Exit code 0 when every check passed; each failure is printed.
"""
import os
import subprocess
import sys
import tempfile
from concurrent import futures

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "..", "proto"))


def load_stubs():
    out = tempfile.mkdtemp(prefix="h2mux-echo-")
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_DIR}", f"--python_out={out}",
         f"--grpc_python_out={out}", os.path.join(PROTO_DIR, "echo.proto")],
        check=True,
    )
    sys.path.insert(0, out)
    import echo_pb2, echo_pb2_grpc  # noqa: E401
    return echo_pb2, echo_pb2_grpc


def run_client(target, h2mux_extras=False, ca=None):
    import grpc
    pb, rpc = load_stubs()
    failures = []

    def check(name, cond, detail=""):
        print(("ok   " if cond else "FAIL ") + name + (f": {detail}" if detail and not cond else ""))
        if not cond:
            failures.append(name)

    if ca:
        with open(ca, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        channel = grpc.secure_channel(target, creds)
    else:
        channel = grpc.insecure_channel(target)
    with channel as ch:
        stub = rpc.EchoStub(ch)
        md = [("x-h2mux-test", "ascii value"), ("x-blob-bin", b"\x00\x01\xfe\xff")]
        r, call = stub.Unary.with_call(pb.EchoRequest(payload=b"hello", repeat=0), timeout=5, metadata=md)
        check("unary echoes the payload", r.payload == b"hello" and r.index == 0, repr(r))
        got = dict(call.initial_metadata())
        check("unary echoes ascii metadata", got.get("x-h2mux-test") == "ascii value", repr(got))
        check("unary echoes binary metadata", got.get("x-blob-bin") == b"\x00\x01\xfe\xff", repr(got))
        replies = list(stub.ServerStream(pb.EchoRequest(payload=b"s", repeat=5), timeout=5))
        check("server streaming sends repeat replies", [x.index for x in replies] == list(range(5)), repr(replies))
        r = stub.ClientStream(iter([pb.EchoRequest(payload=p) for p in (b"a", b"bc", b"def")]), timeout=5)
        check("client streaming concatenates", r.payload == b"abcdef", repr(r))
        out = list(stub.Bidi(iter([pb.EchoRequest(payload=bytes([i])) for i in range(4)]), timeout=5))
        check("bidi echoes each request in order", [(x.payload, x.index) for x in out] == [(bytes([i]), i) for i in range(4)], repr(out))
        r = stub.Unary(pb.EchoRequest(payload=b"z" * 100_000), timeout=5, compression=grpc.Compression.Gzip)
        check("gzip request and reply", r.payload == b"z" * 100_000)
        try:
            stub.Unary(pb.EchoRequest(payload=b"x"), timeout=5, metadata=[("x-h2mux-fail", "NOT_FOUND")])
            check("error status reaches the client", False, "call succeeded")
        except grpc.RpcError as e:
            check("error status reaches the client", e.code() == grpc.StatusCode.NOT_FOUND, f"{e.code()} {e.details()}")
        try:
            stub.Unary(pb.EchoRequest(payload=b"x"), timeout=0.2, metadata=[("x-h2mux-delay-ms", "2000")])
            check("deadline is enforced", False, "call succeeded")
        except grpc.RpcError as e:
            check("deadline is enforced", e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, f"{e.code()}")
        if h2mux_extras:
            raw = ch.unary_unary("/grpc.health.v1.Health/Check", request_serializer=lambda b: b, response_deserializer=lambda b: b)
            check("health check answers SERVING", raw(b"", timeout=5) == b"\x08\x01")
            nope = ch.unary_unary("/h2mux.echo.v1.Echo/Nope", request_serializer=lambda b: b, response_deserializer=lambda b: b)
            try:
                nope(b"", timeout=5)
                check("unknown method is UNIMPLEMENTED", False, "call succeeded")
            except grpc.RpcError as e:
                check("unknown method is UNIMPLEMENTED", e.code() == grpc.StatusCode.UNIMPLEMENTED, f"{e.code()}")
    print(f"{len(failures)} failed")
    return 1 if failures else 0


def run_server(port, cert=None, key=None):
    import time
    import grpc
    pb, rpc = load_stubs()

    def prologue(context):
        """The shared test conventions: delay, requested failure, metadata echo, gzip."""
        md = dict(context.invocation_metadata())
        if "x-h2mux-delay-ms" in md:
            time.sleep(int(md["x-h2mux-delay-ms"]) / 1000)
        if "x-h2mux-fail" in md:
            context.abort(getattr(grpc.StatusCode, md["x-h2mux-fail"]), "failure requested by the client")
        if md.get("x-h2mux-compress") == "gzip":
            context.set_compression(grpc.Compression.Gzip)
        echoed = [(k, v) for k, v in context.invocation_metadata()
                  if k.startswith("x-") and k not in ("x-h2mux-fail", "x-h2mux-delay-ms")]
        context.send_initial_metadata(echoed)
        context.set_trailing_metadata([("x-trailer", "done")])

    class Echo(rpc.EchoServicer):
        def Unary(self, req, context):
            prologue(context)
            return pb.EchoReply(payload=req.payload, index=0)

        def ServerStream(self, req, context):
            prologue(context)
            for i in range(req.repeat):
                yield pb.EchoReply(payload=req.payload, index=i)

        def ClientStream(self, reqs, context):
            prologue(context)
            return pb.EchoReply(payload=b"".join(r.payload for r in reqs), index=0)

        def Bidi(self, reqs, context):
            prologue(context)
            for i, r in enumerate(reqs):
                yield pb.EchoReply(payload=r.payload, index=i)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    rpc.add_EchoServicer_to_server(Echo(), server)
    if cert:
        with open(cert, "rb") as c, open(key, "rb") as k:
            creds = grpc.ssl_server_credentials([(k.read(), c.read())])
        bound = server.add_secure_port(f"127.0.0.1:{port}", creds)
    else:
        bound = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print(f"listening on 127.0.0.1:{bound}", flush=True)
    server.wait_for_termination()
    return 0


def option(args, name):
    """The value after `name` in args (and removes both), or None."""
    if name in args:
        i = args.index(name)
        value = args[i + 1]
        del args[i:i + 2]
        return value
    return None


if __name__ == "__main__":
    args = sys.argv[1:]
    ca, cert, key = option(args, "--ca"), option(args, "--cert"), option(args, "--key")
    if len(args) >= 2 and args[0] in ("client", "client-h2mux"):
        sys.exit(run_client(args[1], h2mux_extras=args[0] == "client-h2mux", ca=ca))
    if len(args) >= 1 and args[0] == "server":
        sys.exit(run_server(int(args[1]) if len(args) > 1 else 0, cert=cert, key=key))
    print(__doc__)
    sys.exit(2)
