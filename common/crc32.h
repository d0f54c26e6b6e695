/* crc32.h -- CRC-32 (IEEE 802.3, the zlib polynomial), incremental. */
#ifndef NB_CRC32_H
#define NB_CRC32_H
#include <stddef.h>
#include <stdint.h>

/* Returns the CRC-32 of buf[0..n) continuing from `crc` (start with 0).
 * nb_crc32(0, "123456789", 9) == 0xCBF43926. */
uint32_t nb_crc32(uint32_t crc, const void *buf, size_t n);

#endif
