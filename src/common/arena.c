/* arena.c - see arena.h. */
#include "arena.h"

#include <stdlib.h>

void w2a_arena_init(w2a_arena *a, size_t block, size_t keep, void *first, size_t first_bytes) {
  a->blocks = NULL;
  a->total = 0;
  a->block = block ? block : 8192;
  a->keep = keep;
  a->inl = NULL;
  if (first && first_bytes > sizeof(w2a_arena_block)) {
    a->inl = first;
    a->inl->cap = first_bytes - sizeof(w2a_arena_block);
    a->inl->used = 0;
    a->inl->next = NULL;
  }
}

void *w2a_arena_alloc(w2a_arena *a, size_t n) {
  w2a_arena_block *b = a->blocks;
  n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
  if (!b && a->inl && a->inl->cap >= n) {
    b = a->inl;
    b->used = 0;
    b->next = NULL;
    a->blocks = b;
    a->total = b->cap;
  } else if (!b || b->cap - b->used < n) {
    size_t cap = n > a->block ? n : a->block;
    if (b && b->cap * 2 > cap) cap = b->cap * 2;
    if (!(b = malloc(sizeof *b + cap))) return NULL;
    b->cap = cap;
    b->used = 0;
    b->next = a->blocks;
    a->blocks = b;
    a->total += cap;
  }
  b->used += n;
  return (char *)b->data + b->used - n;
}

void w2a_arena_release(w2a_arena *a) {
  while (a->blocks) {
    w2a_arena_block *b = a->blocks;
    a->blocks = b->next;
    if (b != a->inl) free(b);
  }
  a->total = 0;
}

void w2a_arena_reset(w2a_arena *a) {
  if (a->blocks && (a->blocks->next || a->total > a->keep)) {
    size_t need = a->total;
    w2a_arena_release(a);
    /* the caller's block is taken again by the next alloc when the round fits in it */
    if (need <= a->keep && !(a->inl && need <= a->inl->cap)) {
      w2a_arena_block *b = malloc(sizeof *b + need);
      if (b) {
        b->cap = need, b->used = 0, b->next = NULL;
        a->blocks = b;
        a->total = need;
      }
    }
  } else if (a->blocks) {
    a->blocks->used = 0;
  }
}

void *w2a_arena_pb_alloc(void *arena, size_t n) { return w2a_arena_alloc(arena, n); }
void w2a_arena_pb_free(void *arena, void *p) { (void)arena, (void)p; }
