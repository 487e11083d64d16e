/* rng.h — counter-based random numbers.
 *
 * Every value is a pure function of (seed, stream, index): the weight init of
 * element i of a tensor is the same whether one rank or a thousand hold it,
 * which is what lets a run change its parallel layout without changing its
 * numbers. splitmix64 is the mixing function (Steele, Lea, Flood 2014).
 */
#ifndef HERD_RNG_H
#define HERD_RNG_H

#include <math.h>
#include <stdint.h>

static inline uint64_t herd_splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* FNV-1a of a string: the stream id of a named tensor. */
static inline uint64_t herd_hash_str(const char *s)
{
    uint64_t h = 0xCBF29CE484222325ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001B3ull;
    return h;
}

/* uniform in (0, 1) from 53 random bits */
static inline double herd_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index)
{
    uint64_t r = herd_splitmix64(herd_splitmix64(seed ^ herd_splitmix64(stream)) + index);
    return ((double)(r >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* standard normal (Box-Muller over two counters) */
static inline double herd_rng_normal(uint64_t seed, uint64_t stream, uint64_t index)
{
    double u1 = herd_rng_uniform(seed, stream, 2 * index);
    double u2 = herd_rng_uniform(seed, stream, 2 * index + 1);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

#endif
