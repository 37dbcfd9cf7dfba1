/* list.h -- intrusive doubly-linked lists, O(1) insert and remove. */
#ifndef MUXD_LIST_H
#define MUXD_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct list {
	struct list *prev, *next;
};

#define LIST_ENTRY(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

static inline void list_init(struct list *l)
{
	l->prev = l->next = l;
}

static inline bool list_empty(const struct list *l)
{
	return l->next == l;
}

/* Unlinked nodes point at themselves, so removing twice is harmless. */
static inline void list_remove(struct list *node)
{
	node->prev->next = node->next;
	node->next->prev = node->prev;
	list_init(node);
}

static inline void list_append(struct list *head, struct list *node)
{
	node->prev = head->prev;
	node->next = head;
	head->prev->next = node;
	head->prev = node;
}

/* Move every node of `from` to `to` (which need not be initialised),
 * leaving `from` empty: O(1). */
static inline void list_take_all(struct list *to, struct list *from)
{
	if (list_empty(from)) {
		list_init(to);
		return;
	}
	*to = *from;
	to->next->prev = to;
	to->prev->next = to;
	list_init(from);
}

#endif
