// Linux epoll, which Glibc's Swift module does not cover: the generator's --io epoll waits on
// every connection with it.
#include <sys/epoll.h>
