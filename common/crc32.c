/* crc32.c -- table-driven CRC-32, the same values as zlib's crc32(). */
#include "crc32.h"

static uint32_t table[256];
static int table_ready;

static void make_table(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    table_ready = 1;
}

uint32_t nb_crc32(uint32_t crc, const void *buf, size_t n) {
    /* The table is a pure function of nothing; a benign race would write equal values,
     * but we build it eagerly from a constructor to keep threads out of it entirely. */
    if (!table_ready) make_table();
    const unsigned char *p = buf;
    crc = ~crc;
    while (n--) crc = table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

__attribute__((constructor)) static void crc32_init(void) { make_table(); }
