/* list.h: the one intrusive doubly linked list of the core (circular, with a
 * head node, as the Linux kernel's): a struct embeds a th_list node and is
 * found back from it with th_list_entry. A node removes itself without knowing
 * its list; a removed (or zeroed) node reads as unlinked. A leaf: header only. */
#ifndef TH_LIST_H
#define TH_LIST_H

#include <stddef.h>

typedef struct th_list {
  struct th_list *next, *prev;
} th_list;

/* A head usable without th_list_init: static th_list x = TH_LIST_INIT(x); */
#define TH_LIST_INIT(name)                                                                         \
  { &(name), &(name) }

#define th_list_entry(node, type, member) ((type *)((char *)(node)-offsetof(type, member)))

static inline void th_list_init(th_list *head) { head->next = head->prev = head; }

static inline int th_list_empty(const th_list *head) { return head->next == head; }

/* Whether node is in a list (a zeroed node is not). */
static inline int th_list_linked(const th_list *node) {
  return node->next != NULL && node->next != node;
}

static inline void th_list__insert(th_list *node, th_list *prev, th_list *next) {
  node->prev = prev;
  node->next = next;
  prev->next = node;
  next->prev = node;
}

static inline void th_list_push_back(th_list *head, th_list *node) {
  th_list__insert(node, head->prev, head);
}

static inline void th_list_push_front(th_list *head, th_list *node) {
  th_list__insert(node, head, head->next);
}

/* Unlink node (nothing when it is not linked); it reads as unlinked after. */
static inline void th_list_remove(th_list *node) {
  if (!th_list_linked(node)) return;
  node->prev->next = node->next;
  node->next->prev = node->prev;
  node->next = node->prev = node;
}

/* Move every node of src to the end of dst; src is empty after. */
static inline void th_list_move_all(th_list *dst, th_list *src) {
  if (th_list_empty(src)) return;
  th_list *first = src->next, *last = src->prev;
  first->prev = dst->prev;
  dst->prev->next = first;
  last->next = dst;
  dst->prev = last;
  th_list_init(src);
}

/* The first node, or NULL when the list is empty. */
static inline th_list *th_list_first(const th_list *head) {
  return th_list_empty(head) ? NULL : head->next;
}

/* The node after node in head's list, or NULL at the end. */
static inline th_list *th_list_next(const th_list *head, const th_list *node) {
  return node->next == head ? NULL : node->next;
}

#endif
