/* nb_simd.h -- the GCC vector types (vector_size extension), declared once for every file
 * that hand-vectorises (model/nn_act.c, nn_gru.c, nn_head.c, nn_layers.c, nn_optim.c).
 *
 * Lane arithmetic on these types is exact IEEE arithmetic lane by lane (no -ffast-math), so a
 * vectorised loop gives the bits of its scalar form whatever the target clone (SSE, AVX2,
 * AVX-512). Values of these types only pass between static inline helpers of one file,
 * never across a call between files: GCC's -Wpsabi note about how 32/64-byte vector
 * arguments are passed without AVX concerns calls between separately compiled code, which
 * never happens here, so the Makefile compiles model/ with -Wno-psabi.
 */
#ifndef NB_SIMD_H
#define NB_SIMD_H

#include <stdint.h>

typedef float nb_f32x8 __attribute__((vector_size(8 * sizeof(float))));
typedef float nb_f32x16 __attribute__((vector_size(16 * sizeof(float))));
typedef double nb_f64x8 __attribute__((vector_size(8 * sizeof(double))));
typedef double nb_f64x16 __attribute__((vector_size(16 * sizeof(double))));
typedef int32_t nb_i32x8 __attribute__((vector_size(8 * sizeof(int32_t))));
typedef int64_t nb_i64x8 __attribute__((vector_size(8 * sizeof(int64_t))));

/* The lanes of model/nn.h's nn_real (float, or double under -DNN_DOUBLE), and the mask
 * type a comparison of 8 of them yields (lanes -1 or 0, as wide as the real). */
#ifdef NN_DOUBLE
typedef nb_f64x8 nb_real8;
typedef nb_f64x16 nb_real16;
typedef nb_i64x8 nb_mask8;
#else
typedef nb_f32x8 nb_real8;
typedef nb_f32x16 nb_real16;
typedef nb_i32x8 nb_mask8;
#endif

#endif
