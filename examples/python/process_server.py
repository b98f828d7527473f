"""Uppercase echo, a process per connection: the parent blocks in accept and forks a child for
each connection; the child blocks in recv on its socket, answers, and exits at end of file.
Finished children are reaped on SIGCHLD, so none stays a zombie (and their CPU time is counted
in the parent's).

Usage: python3 process_server.py PORT

Syscalls to expect: per message, in the child, one recvfrom and one sendto (CPython's
sock.recv and sock.sendall); per connection, in the parent, accept4, clone and close, and,
when SIGCHLD arrives, wait4 calls and rt_sigreturn.
"""
import os
import signal
import socket
import sys


def main():
    port = int(sys.argv[1])
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(10_000)  # the kernel caps it at net.core.somaxconn
    signal.signal(signal.SIGCHLD, reap)
    print("listening on %s:%d" % listener.getsockname(), flush=True)
    while True:
        conn, _ = listener.accept()
        if os.fork() == 0:  # the child serves this connection, then exits
            listener.close()
            echo(conn)
            os._exit(0)
        conn.close()  # the parent keeps only the listener


def echo(conn):
    with conn:
        while data := conn.recv(1024):
            conn.sendall(data.upper())  # bytes.upper() changes ASCII a-z only


reaping = False


def reap(signum, frame):
    # Python runs a handler between two bytecodes of whatever runs, this loop included. A
    # SIGCHLD that comes while the loop runs returns at once (the loop reaps that child too):
    # looping again would nest one call per child, and 10,000 children ending together
    # overflow Python's recursion limit.
    global reaping
    if reaping:
        return
    reaping = True
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass  # no children left
    finally:
        reaping = False


main()
