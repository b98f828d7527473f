"""Uppercase echo on gevent: a coroutine (greenlet) per connection, all on one thread.
monkey.patch_all() makes the standard socket module cooperative: a recv that would block
switches to another greenlet, and gevent's event loop (libev, on epoll) switches back once the
socket is readable. The code reads as blocking; no call blocks the process but the loop's wait.

Usage: python3 gevent_server.py PORT    (gevent is not in the standard library:
`cargo xtask python` makes a virtualenv with it, .tools/python/bin/python)

Syscalls to expect: per message, a recvfrom and a sendto, plus a recvfrom that fails with
EAGAIN when the greenlet gets there before the data (then it waits in the loop); epoll_wait
calls shared by every connection ready at once; epoll_ctl as connections start and stop waiting.
"""
import sys

try:
    from gevent import monkey
except ImportError:
    sys.exit("gevent is not installed for %s: `cargo xtask python` makes .tools/python "
             "with it; run this server with .tools/python/bin/python" % sys.executable)
monkey.patch_all()

from gevent.server import StreamServer  # noqa: E402 (after patching, as gevent asks)


def echo(conn, address):
    with conn:
        while data := conn.recv(1024):
            conn.sendall(data.upper())  # bytes.upper() changes ASCII a-z only


def main():
    port = int(sys.argv[1])
    server = StreamServer(("127.0.0.1", port), echo, backlog=10_000)  # capped at somaxconn
    server.init_socket()
    print("listening on %s:%d" % server.socket.getsockname(), flush=True)
    server.serve_forever()


main()
