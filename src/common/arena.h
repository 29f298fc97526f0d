/* arena.h - a bump allocator in blocks: many small allocations that die together (an
 * unpacked protobuf message, a request being mapped), with no malloc and free per field.
 *
 * A caller may give the first block (on its stack, or inside an object it allocates
 * anyway); it is used first and never freed here. Allocations are aligned to
 * max_align_t. Not thread-safe: one arena, one user. */
#ifndef W2A_ARENA_H
#define W2A_ARENA_H

#include <stddef.h>

typedef struct w2a_arena_block {
  struct w2a_arena_block *next;
  size_t cap, used;
  max_align_t data[];
} w2a_arena_block;

typedef struct w2a_arena {
  w2a_arena_block *blocks; /* newest first */
  size_t total;            /* bytes in blocks */
  size_t block;            /* a new block holds at least this much (and doubles) */
  size_t keep;             /* w2a_arena_reset keeps at most this much */
  w2a_arena_block *inl;    /* the caller's first block, or NULL */
} w2a_arena;

/* Bytes the caller's first block needs for `cap` usable bytes. */
#define W2A_ARENA_FIRST_BYTES(cap) (sizeof(w2a_arena_block) + (cap))

/* first/first_bytes: the caller's block (max_align_t-aligned memory), or NULL/0. */
void w2a_arena_init(w2a_arena *a, size_t block, size_t keep, void *first, size_t first_bytes);
/* n bytes (not zeroed), or NULL when out of memory. */
void *w2a_arena_alloc(w2a_arena *a, size_t n);
/* Everything allocated is gone; one block stays, sized to what this round used (up to
 * `keep`), so the next round like this one allocates nothing. */
void w2a_arena_reset(w2a_arena *a);
/* Free every block but the caller's. */
void w2a_arena_release(w2a_arena *a);

/* protobuf-c's ProtobufCAllocator over an arena ({.alloc, .free, .allocator_data = a}):
 * unpacked messages live in the arena; their free is a no-op (reset or release the arena
 * instead of protobuf_c_message_free_unpacked). */
void *w2a_arena_pb_alloc(void *arena, size_t n);
void w2a_arena_pb_free(void *arena, void *p);

#endif
