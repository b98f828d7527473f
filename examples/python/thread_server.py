"""Uppercase echo, a thread per connection: the main thread blocks in accept and starts a
thread for each connection; that thread blocks in recv on its socket, answers, and ends at end
of file.

Usage: python3 thread_server.py PORT

Syscalls to expect: per message, one recvfrom and one sendto (CPython's sock.recv and
sock.sendall); per connection, accept4 and a clone3 in the main thread, and the thread's own
start-up and exit calls. The GIL is handed over between threads with futex calls.
"""
import socket
import sys
import threading


def main():
    port = int(sys.argv[1])
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(10_000)  # the kernel caps it at net.core.somaxconn
    print("listening on %s:%d" % listener.getsockname(), flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=echo, args=(conn,), daemon=True).start()


def echo(conn):
    with conn:
        while data := conn.recv(1024):
            conn.sendall(data.upper())  # bytes.upper() changes ASCII a-z only


main()
