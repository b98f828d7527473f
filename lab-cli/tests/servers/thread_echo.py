"""Uppercase-echo server, one thread per connection: each thread blocks in recv on its own
socket; the main thread blocks in accept.

Usage: python3 thread_echo.py [PORT]    (port 0, the default, lets the kernel pick one)
"""
import socket
import sys
import threading


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    listener = socket.create_server(("127.0.0.1", port), backlog=1024)
    print("listening on %s:%d" % listener.getsockname(), flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=echo, args=(conn,), daemon=True).start()


def echo(conn):
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data.upper())  # bytes.upper() changes ASCII a-z only


main()
