/*
 * What waking a sleeping thread costs on this machine: two threads pass a token back and
 * forth through two eventfds, each blocking in read() until the other writes. Every pass is
 * one wake-up of a sleeping thread, the step a DNS answer takes from the UDP reactor's thread
 * to an event loop (and from Knot's reply to the reactor). Printed: the wall time of a round
 * trip and the CPU (user + system, both threads) per wake-up, with the threads free to run
 * on any core, then with both on one core (no inter-processor interrupt).
 *
 *   cc -O2 -pthread bench/policy/wake-cost.c -o /tmp/wake-cost && /tmp/wake-cost [ROUND_TRIPS]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static int to_peer, to_main;
static long round_trips = 100000;

static void pass(int fd) {
    uint64_t one = 1;
    if (write(fd, &one, sizeof one) != sizeof one) { perror("write"); exit(1); }
}

static void await_token(int fd) {
    uint64_t value;
    if (read(fd, &value, sizeof value) != sizeof value) { perror("read"); exit(1); }
}

static void *peer(void *unused) {
    (void)unused;
    for (long i = 0; i < round_trips; i++) {
        await_token(to_peer);
        pass(to_main);
    }
    return NULL;
}

static double cpu_microseconds(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e6 + usage.ru_utime.tv_usec + usage.ru_stime.tv_usec;
}

static void measure(const char *label) {
    pthread_t thread;
    struct timespec start, end;
    double cpu = cpu_microseconds();
    clock_gettime(CLOCK_MONOTONIC, &start);
    pthread_create(&thread, NULL, peer, NULL);
    for (long i = 0; i < round_trips; i++) {
        pass(to_peer);
        await_token(to_main);
    }
    pthread_join(thread, NULL);
    clock_gettime(CLOCK_MONOTONIC, &end);
    cpu = cpu_microseconds() - cpu;
    double wall = (end.tv_sec - start.tv_sec) * 1e6 + (end.tv_nsec - start.tv_nsec) / 1e3;
    printf("%-26s round trip %6.2f µs, CPU per wake-up %5.2f µs (%ld round trips)\n", label, wall / round_trips,
           cpu / (2.0 * round_trips), round_trips);
}

int main(int argc, char **argv) {
    if (argc > 1 && (round_trips = atol(argv[1])) <= 0) {
        fprintf(stderr, "usage: %s [ROUND_TRIPS]\n", argv[0]);
        return 2;
    }
    to_peer = eventfd(0, 0);
    to_main = eventfd(0, 0);
    if (to_peer < 0 || to_main < 0) { perror("eventfd"); return 1; }
    measure("threads on any core:");
    cpu_set_t one_core;
    CPU_ZERO(&one_core);
    CPU_SET(0, &one_core);
    if (sched_setaffinity(0, sizeof one_core, &one_core) != 0) { perror("sched_setaffinity"); return 1; }
    measure("both threads on core 0:");
    return 0;
}
