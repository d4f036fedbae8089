// Linux epoll, eventfd and timerfd, which Glibc's Swift module does not cover: the DNS
// resolver's UDP reactor (Sources/DNSResolver/Transport/UDPQueryReactor.swift) waits on its
// sockets and deadlines with them.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
