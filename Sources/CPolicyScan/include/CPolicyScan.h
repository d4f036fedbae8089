#ifndef C_POLICY_SCAN_H
#define C_POLICY_SCAN_H

#include <stddef.h>
#include <stdint.h>

/* What `vrules_policy_scan` found in policy request lines. */
enum {
    /* A C0 control byte other than tab, LF and CR, or DEL. */
    VRULES_POLICY_SCAN_CONTROL = 1,
    /* A byte of 0x80 or above (the lines need UTF-8 validation). */
    VRULES_POLICY_SCAN_HIGH = 2,
    /* A CR (allowed only before LF: the caller checks where). */
    VRULES_POLICY_SCAN_CARRIAGE = 4,
};

/* Which of the VRULES_POLICY_SCAN_ flags `count` bytes at `bytes` raise: sixteen bytes at a
 * time with SSE2, where Swift's SIMD types fall back to a loop over the lanes. */
int vrules_policy_scan(const uint8_t *bytes, size_t count);

#endif
