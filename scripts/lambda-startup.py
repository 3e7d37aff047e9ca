#!/usr/bin/env python3
"""Start-up time of a Lambda bootstrap, median of several fresh processes.

Usage: scripts/lambda-startup.py [--runs N] [--emulator PORT --key KEY] -- COMMAND...

COMMAND starts the function (its bootstrap, or `qemu-aarch64-static -L SYSROOT
bootstrap`); it inherits this script's environment (MEDIA_DIR and the
AWS_LAMBDA_FUNCTION_* variables), and AWS_LAMBDA_RUNTIME_API is set here.
Two figures, each the median of N runs, each run a new process:

  start-up     from starting COMMAND (subprocess.Popen) to the runtime's first
               request, GET /2018-06-01/runtime/invocation/next, complete, at a
               minimal Runtime API in this script (no emulator, no request
               served): loading, runtime set-up, configuration.
  first answer with --emulator PORT (a running `cargo lambda watch
               --only-lambda-apis -A 127.0.0.1 -P PORT`): a request for
               `Range: bytes=0-1` of KEY waits at the emulator; from starting
               COMMAND to the complete 206 answer (2 body bytes), which is
               start-up plus the first invocation (the cold start that
               bench/lambda-profile.sh and tests/it/lambda.rs measure, to the
               last byte rather than the first; here they are 2 bytes apart).

Prints one line per figure, times in milliseconds; exits 1 when a run fails.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

TIMEOUT = 30.0


# The function's stdout and stderr, shown when a run fails.
LOG = tempfile.TemporaryFile()


def fail(message, process=None):
    print(f"lambda-startup: {message}", file=sys.stderr)
    if process is not None:
        status = process.poll()
        print(f"lambda-startup: the function {'is still running' if status is None else f'exited with {status}'}"
              "; its output:", file=sys.stderr)
        LOG.seek(0)
        sys.stderr.write(LOG.read().decode("utf-8", "replace")[-4000:])
    sys.exit(1)


def start(command, runtime_api):
    env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=runtime_api)
    LOG.seek(0)
    LOG.truncate()
    return subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL,
                            stdout=LOG, stderr=subprocess.STDOUT)


def stop(process):
    process.kill()
    process.wait()


def to_first_poll(command):
    """Seconds from starting COMMAND to its first GET .../invocation/next."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(TIMEOUT)
        port = server.getsockname()[1]
        started = time.perf_counter()
        process = start(command, f"http://127.0.0.1:{port}")
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                # A connection that closes before sending a byte is not the
                # runtime's (another program probing for its own port, which
                # this one happened to get): wait for the next.
                conn, _ = server.accept()
                with conn:
                    conn.settimeout(TIMEOUT)
                    while b"\r\n\r\n" not in head:
                        data = conn.recv(4096)
                        if not data:
                            if head:
                                fail(f"connection closed inside a request: {head!r}", process)
                            break
                        head += data
            elapsed = time.perf_counter() - started
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            if line != "GET /2018-06-01/runtime/invocation/next HTTP/1.1":
                fail(f"the first request was {line!r}", process)
        except socket.timeout:
            fail(f"no request to the Runtime API within {TIMEOUT:.0f} s", process)
        finally:
            stop(process)
    return elapsed


def to_first_answer(command, port, key):
    """Seconds from starting COMMAND to the complete answer of a waiting request."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as client:
        client.sendall(f"GET /{key} HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\n"
                       "Connection: close\r\n\r\n".encode())
        time.sleep(0.1)  # the request now waits at the emulator for a function
        started = time.perf_counter()
        process = start(command, f"http://127.0.0.1:{port}/.rt")
        try:
            raw = b""
            while True:
                data = client.recv(65536)
                if not data:
                    break
                raw += data
            elapsed = time.perf_counter() - started
        except socket.timeout:
            fail(f"no complete answer within {TIMEOUT:.0f} s: {raw!r}", process)
        finally:
            stop(process)
    status = raw.split(b"\r\n", 1)[0]
    if status != b"HTTP/1.1 206 Partial Content":
        fail(f"the first answer was {status!r}", process)
    return elapsed


def report(name, definition, runs):
    ms = [round(r * 1000, 1) for r in runs]
    print(f"{name}: {statistics.median(ms):.1f} ms, median of {len(ms)} "
          f"({definition}; all: {', '.join(f'{m:.1f}' for m in ms)})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--emulator", type=int, metavar="PORT")
    parser.add_argument("--key", default="test-pattern.mp4")
    parser.add_argument("command", nargs="+")
    args = parser.parse_args()
    report("start-up", "process start to its first GET /runtime/invocation/next",
           [to_first_poll(args.command) for _ in range(args.runs)])
    if args.emulator:
        report("first answer",
               f"process start to a waiting bytes=0-1 request's complete 206 via the emulator",
               [to_first_answer(args.command, args.emulator, args.key)
                for _ in range(args.runs)])


if __name__ == "__main__":
    main()
