/*
 * The kernel's share of a DNS question as vrules' UDP reactor asks it, with no user-space
 * work around it: QUESTIONS TXT queries for distinct names (t<hex>.spf.example, which the
 * SPF benchmark's zone answers by wildcard) to a DNS server on 127.0.0.1:PORT, IN_FLIGHT of
 * them outstanding, one thread waiting on all sockets with epoll. Printed: questions per
 * second and the CPU per question in user space and in the kernel (this process only).
 *
 * MODE 0 is the reactor's way: a pooled socket connected for each query (a fresh random
 * port), the ID from getrandom, then disconnected (connect AF_UNSPEC) and emptied. MODE 1
 * opens and closes a socket per query (the reactor before 11-29). MODE 2 keeps each socket
 * connected (one port for many queries: not what vrules does; the floor without the port
 * change).
 *
 *   cc -O2 bench/policy/udp-floor.c -o /tmp/udp-floor
 *   taskset -c 1 /tmp/udp-floor PORT [QUESTIONS=100000] [IN_FLIGHT=16] [MODE=0]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in server;
static int mode;

static int query(unsigned char *packet, int number) {
    unsigned short id;
    if (getrandom(&id, sizeof id, 0) != sizeof id) { perror("getrandom"); exit(1); }
    int length = 0;
    packet[length++] = id >> 8;
    packet[length++] = id & 0xff;
    packet[length++] = 1;      /* RD */
    packet[length++] = 0;
    packet[length++] = 0;
    packet[length++] = 1;      /* one question */
    memset(packet + length, 0, 6);
    length += 6;
    char label[16];
    int size = snprintf(label, sizeof label, "t%x", number);
    packet[length++] = size;
    memcpy(packet + length, label, size);
    length += size;
    memcpy(packet + length, "\3spf\7example\0\0\20\0\1", 17);  /* TXT IN */
    return length + 17;
}

static int open_socket(int epoll, int slot) {
    int descriptor = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (descriptor < 0) { perror("socket"); exit(1); }
    struct epoll_event event = { .events = EPOLLIN, .data.u32 = slot };
    if (epoll_ctl(epoll, EPOLL_CTL_ADD, descriptor, &event) != 0) { perror("epoll_ctl"); exit(1); }
    if (mode == 2 && connect(descriptor, (struct sockaddr *)&server, sizeof server) != 0) { perror("connect"); exit(1); }
    return descriptor;
}

static void ask(int descriptor, int number) {
    unsigned char packet[512];
    int length = query(packet, number);
    if (mode != 2 && connect(descriptor, (struct sockaddr *)&server, sizeof server) != 0) { perror("connect"); exit(1); }
    if (send(descriptor, packet, length, 0) != length) { perror("send"); exit(1); }
}

static double microseconds(struct timeval time) { return time.tv_sec * 1e6 + time.tv_usec; }

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s PORT [QUESTIONS] [IN_FLIGHT] [MODE]\n", argv[0]); return 2; }
    int port = atoi(argv[1]);
    int questions = argc > 2 ? atoi(argv[2]) : 100000;
    int in_flight = argc > 3 ? atoi(argv[3]) : 16;
    mode = argc > 4 ? atoi(argv[4]) : 0;
    if (in_flight < 1 || in_flight > 1024 || questions < 1 || mode < 0 || mode > 2) { fprintf(stderr, "bad arguments\n"); return 2; }
    server.sin_family = AF_INET;
    server.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &server.sin_addr);

    int epoll = epoll_create1(EPOLL_CLOEXEC);
    int *sockets = calloc(in_flight, sizeof *sockets);
    for (int slot = 0; slot < in_flight; slot++) sockets[slot] = open_socket(epoll, slot);

    struct rusage before, after;
    struct timespec started, ended;
    getrusage(RUSAGE_SELF, &before);
    clock_gettime(CLOCK_MONOTONIC, &started);
    int sent = 0, answered = 0;
    for (int slot = 0; slot < in_flight && sent < questions; slot++) ask(sockets[slot], sent++);
    unsigned char reply[2048];
    struct epoll_event events[64];
    while (answered < questions) {
        int ready = epoll_wait(epoll, events, 64, 5000);
        if (ready <= 0) { fprintf(stderr, "no reply for 5 s (%d answered): is the server on port %d?\n", answered, port); return 1; }
        for (int index = 0; index < ready; index++) {
            int slot = events[index].data.u32;
            while (recv(sockets[slot], reply, sizeof reply, 0) > 0) {}
            answered++;
            if (mode == 0) {
                struct sockaddr unspecified = { .sa_family = AF_UNSPEC };
                connect(sockets[slot], &unspecified, sizeof unspecified);
                recv(sockets[slot], reply, sizeof reply, 0);
            } else if (mode == 1) {
                epoll_ctl(epoll, EPOLL_CTL_DEL, sockets[slot], NULL);
                close(sockets[slot]);
                sockets[slot] = open_socket(epoll, slot);
            }
            if (sent < questions) ask(sockets[slot], sent++);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &ended);
    getrusage(RUSAGE_SELF, &after);
    double seconds = (ended.tv_sec - started.tv_sec) + (ended.tv_nsec - started.tv_nsec) / 1e9;
    printf("mode=%d in_flight=%d questions=%d questions_per_s=%.0f user_us_per_question=%.2f sys_us_per_question=%.2f\n",
           mode, in_flight, questions, questions / seconds,
           (microseconds(after.ru_utime) - microseconds(before.ru_utime)) / questions,
           (microseconds(after.ru_stime) - microseconds(before.ru_stime)) / questions);
    return 0;
}
