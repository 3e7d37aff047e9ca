#!/usr/bin/env python3
"""Shows how `cargo lambda watch` answers a streamed response whose prelude
chunk reaches it in two reads.

It plays a streaming function against the emulator's Runtime API: it takes one
invocation from /next and answers it with a prelude, the 8-byte separator and
a short body, the way lambda_runtime frames them. It does so twice: once with
the prelude chunk in one TCP segment, once split across two. Chunk boundaries
on the wire are not read boundaries, so both are the same valid HTTP request.

    bench/emulator-split-prelude.py PORT

PORT is a running `cargo lambda watch --only-lambda-apis -A 127.0.0.1 -P PORT`
with no function polling it. Under load the emulator's reads on a kept-alive
connection can end inside a prelude chunk in the same way; this is where the
rare 500s seen through the emulator at 64 connections come from (README, Load
testing).
"""
import json
import socket
import sys
import threading
import time

PORT = int(sys.argv[1])


def client(result):
    s = socket.create_connection(("127.0.0.1", PORT))
    s.sendall(b"GET /probe.bin HTTP/1.1\r\nhost: localhost\r\n\r\n")
    s.settimeout(5)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            data += s.recv(65536)
        s.settimeout(0.5)
        try:
            while True:
                more = s.recv(65536)
                if not more:
                    break
                data += more
        except socket.timeout:
            pass
    except socket.timeout:
        data = b"(no answer within 5 s)"
    result.append(data)
    s.close()


def header(head, name):
    for line in head.split("\r\n"):
        if line.lower().startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise SystemExit("no %s in %r" % (name, head))


def function(split):
    runtime = socket.create_connection(("127.0.0.1", PORT))
    runtime.sendall(b"GET /.rt/2018-06-01/runtime/invocation/next HTTP/1.1\r\nhost: localhost\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        data += runtime.recv(65536)
    head, event = data.split(b"\r\n\r\n", 1)
    head = head.decode("latin-1")
    request_id = header(head, "lambda-runtime-aws-request-id")
    while len(event) < int(header(head, "content-length")):
        event += runtime.recv(65536)

    prelude = json.dumps({"statusCode": 200, "headers": {"content-type": "text/plain"},
                          "cookies": []}).encode()
    response = socket.create_connection(("127.0.0.1", PORT))
    response.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    response.sendall((
        "POST /.rt/2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\n"
        "host: localhost\r\ntransfer-encoding: chunked\r\n"
        "lambda-runtime-function-response-mode: streaming\r\n"
        "content-type: application/vnd.awslambda.http-integration-response\r\n\r\n"
        % request_id).encode())
    chunk = b"%x\r\n" % len(prelude) + prelude + b"\r\n"
    if split:
        response.sendall(chunk[:20])
        time.sleep(0.05)
        response.sendall(chunk[20:])
    else:
        response.sendall(chunk)
    time.sleep(0.05)
    try:
        response.sendall(b"8\r\n" + b"\0" * 8 + b"\r\n")
        response.sendall(b"5\r\nhello\r\n0\r\n\r\n")
    except OSError as e:
        print("  the emulator closed the function's response connection: %s" % e)
    time.sleep(0.3)
    response.close()
    runtime.close()


for split in (False, True):
    result = []
    waiting = threading.Thread(target=client, args=(result,))
    waiting.start()
    time.sleep(0.2)
    function(split)
    waiting.join()
    status = result[0].split(b"\r\n", 1)[0].decode("latin-1")
    body = result[0].split(b"\r\n\r\n", 1)[-1][:100]
    print("prelude in %s: the client gets %s, body %r"
          % ("two segments" if split else "one segment", status, body))
