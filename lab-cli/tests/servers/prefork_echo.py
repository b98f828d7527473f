"""Uppercase-echo server whose work is done by grandchildren: the master listens, forks
WORKERS children, and each child forks one grandchild and waits for it. Only the grandchildren
accept and serve (one connection at a time each); master and children just wait.

Usage: python3 prefork_echo.py [PORT [WORKERS]]    (port 0, the default, lets the kernel pick)
"""
import os
import socket
import sys


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    listener = socket.create_server(("127.0.0.1", port), backlog=1024)
    for _ in range(workers):
        if os.fork() == 0:
            child(listener)
    print("listening on %s:%d" % listener.getsockname(), flush=True)
    while True:
        os.wait()


def child(listener):
    if os.fork() == 0:
        serve(listener)
    os.wait()
    os._exit(0)


def serve(listener):
    while True:
        conn, _ = listener.accept()
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data.upper())  # bytes.upper() changes ASCII a-z only


main()
