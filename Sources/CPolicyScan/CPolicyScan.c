/*
 * The byte scan of policy request lines: every byte of every request passes through it, so it
 * looks at sixteen at a time.
 */
#include "CPolicyScan.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

static int scan_byte(uint8_t byte) {
    int flags = 0;
    if ((byte < 0x20 && byte != 0x09 && byte != 0x0A && byte != 0x0D) || byte == 0x7F) flags |= VRULES_POLICY_SCAN_CONTROL;
    if (byte >= 0x80) flags |= VRULES_POLICY_SCAN_HIGH;
    if (byte == 0x0D) flags |= VRULES_POLICY_SCAN_CARRIAGE;
    return flags;
}

int vrules_policy_scan(const uint8_t *bytes, size_t count) {
    int flags = 0;
    size_t offset = 0;
#if defined(__SSE2__)
    __m128i control = _mm_setzero_si128();
    __m128i high = _mm_setzero_si128();
    __m128i carriage = _mm_setzero_si128();
    const __m128i tab = _mm_set1_epi8(0x09);
    const __m128i newline = _mm_set1_epi8(0x0A);
    const __m128i cr = _mm_set1_epi8(0x0D);
    const __m128i del = _mm_set1_epi8(0x7F);
    for (; offset + 16 <= count; offset += 16) {
        __m128i chunk = _mm_loadu_si128((const __m128i *)(bytes + offset));
        /* Unsigned chunk < 0x20: min(chunk, 0x1F) == chunk. */
        __m128i below = _mm_cmpeq_epi8(_mm_min_epu8(chunk, _mm_set1_epi8(0x1F)), chunk);
        __m128i line_control = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(chunk, tab), _mm_cmpeq_epi8(chunk, newline)),
                                            _mm_cmpeq_epi8(chunk, cr));
        control = _mm_or_si128(control, _mm_or_si128(_mm_andnot_si128(line_control, below), _mm_cmpeq_epi8(chunk, del)));
        high = _mm_or_si128(high, chunk);
        carriage = _mm_or_si128(carriage, _mm_cmpeq_epi8(chunk, cr));
    }
    if (_mm_movemask_epi8(control)) flags |= VRULES_POLICY_SCAN_CONTROL;
    if (_mm_movemask_epi8(high)) flags |= VRULES_POLICY_SCAN_HIGH;
    if (_mm_movemask_epi8(carriage)) flags |= VRULES_POLICY_SCAN_CARRIAGE;
#endif
    for (; offset < count; offset++) flags |= scan_byte(bytes[offset]);
    return flags;
}
