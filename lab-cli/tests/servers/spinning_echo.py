"""Uppercase-echo server, a thread per connection, with a bug: once its client has left, the
thread busy-polls (select with a zero timeout, a syscall each time) instead of ending. It stops
after SPIN seconds, so a test that uses it ends on its own. The lab waits for a server to go idle
before it reads the counters; this one never does while the lab waits.

Usage: python3 spinning_echo.py [PORT] [SPIN]
"""
import select
import socket
import sys
import threading
import time


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    spin = float(sys.argv[2]) if len(sys.argv) > 2 else 8.0
    listener = socket.create_server(("127.0.0.1", port), backlog=1024)
    print("listening on %s:%d" % listener.getsockname(), flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=echo, args=(conn, spin), daemon=True).start()


def echo(conn, spin):
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data.upper())
    left = time.monotonic()
    while time.monotonic() - left < spin:
        select.select([], [], [], 0)


main()
