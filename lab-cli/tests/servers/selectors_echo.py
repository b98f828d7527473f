"""Uppercase-echo server on Python's `selectors` (epoll on Linux): one thread multiplexes
every connection; it reads only from sockets the selector reports ready.

Usage: python3 selectors_echo.py [PORT [poll]]    (port 0, the default, lets the kernel pick one)

With `poll` it waits in poll(2) with a long timeout instead of epoll_wait(2) without one. A
blocked call with a timeout is restarted as `restart_syscall` when a tracer attaches, which is
what `iolab trace --validate` has to account for.
"""
import selectors
import socket
import sys


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    listener = socket.create_server(("127.0.0.1", port), backlog=1024)
    listener.setblocking(False)
    use_poll = len(sys.argv) > 2 and sys.argv[2] == "poll"
    selector = selectors.PollSelector() if use_poll else selectors.DefaultSelector()
    timeout = 1000 if use_poll else None
    selector.register(listener, selectors.EVENT_READ)
    print("listening on %s:%d" % listener.getsockname(), flush=True)
    while True:
        for key, _ in selector.select(timeout):
            if key.fileobj is listener:
                accept(selector, listener)
            else:
                echo(selector, key.fileobj)


def accept(selector, listener):
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        return  # another wakeup took it
    conn.setblocking(True)  # reads happen only when ready; a blocking send writes everything
    selector.register(conn, selectors.EVENT_READ)


def echo(selector, conn):
    data = conn.recv(65536)
    if data:
        conn.sendall(data.upper())  # bytes.upper() changes ASCII a-z only
    else:
        selector.unregister(conn)
        conn.close()


main()
