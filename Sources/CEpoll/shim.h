// Linux epoll, eventfd and timerfd, which Glibc's Swift module does not cover: the DNS
// resolver's UDP reactor (Sources/DNSResolver/Transport/UDPQueryReactor.swift) waits on its
// sockets and deadlines with them. Also the scheduling policy its thread runs under, which
// glibc declares only with _GNU_SOURCE, and getrandom, which the module leaves out.
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sched.h>
#include <pthread.h>

#ifndef SCHED_BATCH
#define SCHED_BATCH 3
#endif

/// Puts the calling thread under SCHED_BATCH at its current nice level: it no longer preempts
/// the thread running when it wakes (no wake-up preemption), and otherwise gets its fair
/// share as before. 0, or -1 with errno set.
static inline int vrules_thread_schedule_batch(void) {
    struct sched_param parameters = { .sched_priority = 0 };
    return sched_setscheduler(0, SCHED_BATCH, &parameters);
}

/// Names the calling thread (at most 15 bytes are kept); glibc declares
/// pthread_setname_np only with _GNU_SOURCE.
int pthread_setname_np(pthread_t thread, const char *name);
static inline int vrules_thread_set_name(const char *name) {
    return pthread_setname_np(pthread_self(), name);
}

/// Fills `buffer` from the kernel's CSPRNG (blocking only before it is first seeded): the
/// count of bytes written, or -1 with errno set.
static inline long vrules_getrandom(void *buffer, unsigned long count) {
    return getrandom(buffer, count, 0);
}
