#ifndef VRULES_CCPUAFFINITY_H
#define VRULES_CCPUAFFINITY_H

/// How many CPUs this process may run on (its scheduler affinity mask: `taskset`, systemd's
/// `CPUAffinity=`), or 0 when the mask cannot be read. `CPU_COUNT` is a macro and
/// `sched_getaffinity` needs `_GNU_SOURCE`, so Swift reaches them through this function.
int vrules_cpu_affinity_count(void);

#endif
