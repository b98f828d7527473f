/*
 * echo_epoll.c — the reference server for `iolab bench`: the smallest honest C epoll server
 * that speaks iolab's protocol (the reply is the request with ASCII a–z uppercased).
 *
 * One thread, level-triggered epoll, non-blocking sockets: the same design as the `epoll`
 * model, written the way a C programmer would, so the bench can ask whether the Rust models
 * are real contenders. Per message it makes one read and one write, plus a share of an
 * epoll_wait. A reply the socket cannot take at once is kept, and the connection then waits
 * for EPOLLOUT instead of EPOLLIN until it is sent (so a slow reader cannot make us buffer
 * without bound).
 *
 *   gcc -O2 -o echo_epoll bench/echo_epoll.c && ./echo_epoll [PORT | --listen-fd FD]
 *
 * It listens on 127.0.0.1 only (PORT 0, the default: any free port), or on an inherited
 * listening socket, and prints "listening on 127.0.0.1:PORT" when ready.
 */
#define _GNU_SOURCE   /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE 16384
#define MAX_EVENTS 1024

struct conn {
    int fd;
    size_t unsent, offset;     /* bytes of buf still to write, from buf + offset */
    char buf[BUF_SIZE];
};

static void die(const char *what) { perror(what); exit(1); }

static void set_interest(int ep, struct conn *c, int op, unsigned events) {
    struct epoll_event ev = { .events = events, .data.ptr = c };
    if (epoll_ctl(ep, op, c->fd, &ev) < 0) die("epoll_ctl");
}

static void drop_conn(struct conn *c) { close(c->fd); free(c); }   /* close also leaves epoll */

/* Writes what is pending; returns 0 when all is sent, 1 if the socket is full, -1 on error. */
static int flush(struct conn *c) {
    while (c->unsent > 0) {
        ssize_t n = write(c->fd, c->buf + c->offset, c->unsent);
        if (n < 0) return errno == EAGAIN ? 1 : -1;
        c->offset += n;
        c->unsent -= n;
    }
    return 0;
}

/* One readiness event: send what was left over, or read once, uppercase, reply. */
static void serve(int ep, struct conn *c, unsigned events) {
    if (c->unsent > 0 || (events & EPOLLOUT)) {
        int r = flush(c);
        if (r < 0) { drop_conn(c); return; }
        if (r == 0) set_interest(ep, c, EPOLL_CTL_MOD, EPOLLIN);    /* drained: read again */
        return;
    }
    ssize_t n = read(c->fd, c->buf, BUF_SIZE);
    if (n == 0 || (n < 0 && errno != EAGAIN)) { drop_conn(c); return; }   /* EOF or error */
    if (n < 0) return;                                                  /* spurious wake-up */
    for (ssize_t i = 0; i < n; i++)
        if (c->buf[i] >= 'a' && c->buf[i] <= 'z') c->buf[i] -= 'a' - 'A';
    c->offset = 0;
    c->unsent = n;
    int r = flush(c);
    if (r < 0) drop_conn(c);
    else if (r == 1) set_interest(ep, c, EPOLL_CTL_MOD, EPOLLOUT);     /* socket full: wait */
}

/* A listening socket on 127.0.0.1:port (0: any free port). */
static int listen_on(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                                .sin_port = htons(port) };
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
    if (listen(fd, 4096) < 0) die("listen");   /* the kernel caps it at net.core.somaxconn */
    return fd;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);   /* a client that went away is an EPIPE from write, not a death */
    /* `--listen-fd N`: serve on an inherited listening socket (how iolab starts servers). */
    int lfd = argc > 2 && !strcmp(argv[1], "--listen-fd") ? atoi(argv[2])
                                                          : listen_on(argc > 1 ? atoi(argv[1]) : 0);
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    if (getsockname(lfd, (struct sockaddr *)&addr, &len) < 0) die("getsockname");
    if (fcntl(lfd, F_SETFL, O_NONBLOCK) < 0) die("fcntl");
    printf("listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));
    fflush(stdout);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };   /* NULL: the listener */
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) die("epoll");
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int ready = epoll_wait(ep, events, MAX_EVENTS, -1);
        if (ready < 0 && errno != EINTR) die("epoll_wait");
        for (int i = 0; i < ready; i++) {
            struct conn *c = events[i].data.ptr;
            if (c) { serve(ep, c, events[i].events); continue; }
            int fd;   /* the listener: accept every waiting connection */
            while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                struct conn *nc = calloc(1, sizeof *nc);
                if (!nc) die("calloc");
                nc->fd = fd;
                /* Send a reply's tail at once: with Nagle it would wait for the client's
                   delayed ACK (40 ms) whenever a large reply goes out in several writes. */
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
                set_interest(ep, nc, EPOLL_CTL_ADD, EPOLLIN);
            }
        }
    }
}
