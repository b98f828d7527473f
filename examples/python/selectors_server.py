"""Uppercase echo on Python's selectors: one thread waits for every socket at once and reads
only those the selector reports ready. DefaultSelector is epoll on Linux: each socket is
registered once (epoll_ctl) and each wait returns only the ready ones.

Usage: python3 selectors_server.py PORT [select]

With `select` it uses selectors.SelectSelector, which calls select(2) with every registered
socket on every wait. Python's select.select refuses file descriptors of 1024 and above
(FD_SETSIZE), so that server fails once it has about 1,020 connections open.

Syscalls to expect: per message, one recvfrom and one sendto; per wait, one epoll_wait (or
pselect6, the C library's select) that may report many sockets; per connection, accept4 and
epoll_ctl to add it and to remove it at the end.
"""
import selectors
import socket
import sys


def main():
    port = int(sys.argv[1])
    use_select = sys.argv[2:] == ["select"]
    selector = selectors.SelectSelector() if use_select else selectors.DefaultSelector()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(10_000)  # the kernel caps it at net.core.somaxconn
    listener.setblocking(False)
    selector.register(listener, selectors.EVENT_READ)
    print("listening on %s:%d" % listener.getsockname(), flush=True)
    while True:
        for key, _ in selector.select():
            if key.fileobj is listener:
                accept(selector, listener)
            else:
                echo(selector, key.fileobj)


def accept(selector, listener):
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        return  # another wake-up took it
    conn.setblocking(True)  # read only when ready; a blocking sendall writes it all
    selector.register(conn, selectors.EVENT_READ)


def echo(selector, conn):
    data = conn.recv(1024)
    if data:
        conn.sendall(data.upper())  # bytes.upper() changes ASCII a-z only
    else:  # end of file: the client is done
        selector.unregister(conn)
        conn.close()


main()
