/* Uppercase-echo server in C on epoll: one thread, level-triggered, blocking client sockets
 * that are read only when epoll reports them ready (one read per readiness, so it never blocks).
 *
 * Build: gcc -O2 -o epoll_echo epoll_echo.c
 * Usage: ./epoll_echo [PORT]    (port 0, the default, lets the kernel pick one)
 */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static void die(const char *what) {
    perror(what);
    exit(1);
}

static int listen_on(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) die("socket");
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
    if (listen(fd, 1024) < 0 || getsockname(fd, (struct sockaddr *)&addr, &len) < 0) die("listen");
    printf("listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));
    fflush(stdout);
    return fd;
}

static void watch(int epfd, int fd) {
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
}

/* One read, and the whole reply written back; closes the connection at EOF or error. */
static void echo(int fd) {
    char buf[65536];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) {
        close(fd); /* closing removes it from the epoll interest list */
        return;
    }
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] >= 'a' && buf[i] <= 'z') buf[i] -= 'a' - 'A';
    for (ssize_t done = 0; done < n;) {
        ssize_t w = write(fd, buf + done, n - done);
        if (w < 0) {
            close(fd);
            return;
        }
        done += w;
    }
}

int main(int argc, char **argv) {
    int listener = listen_on(argc > 1 ? atoi(argv[1]) : 0);
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) die("epoll_create1");
    watch(epfd, listener);
    struct epoll_event events[64];
    for (;;) {
        int n = epoll_wait(epfd, events, 64, -1);
        if (n < 0 && errno == EINTR) continue; /* e.g. a tracer attaching */
        if (n < 0) die("epoll_wait");
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd != listener) {
                echo(fd);
                continue;
            }
            int conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
            if (conn >= 0) watch(epfd, conn);
        }
    }
}
