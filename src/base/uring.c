/* uring.c -- the io_uring system calls, the shared rings and their order.
 *
 * The rings are memory shared with the kernel. Each side writes only its
 * own index: we write the SQ tail and the CQ head, the kernel the SQ head
 * and the CQ tail. An index is read with acquire and written with release,
 * so an entry is complete in memory before the other side can see it
 * counted, and is not reused before the other side is done with it.
 */
#include "base/uring.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/net.h"
#include "base/stats.h"
#include "base/trace.h"

#define LOAD_ACQUIRE(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE_RELEASE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

static int sys_setup(unsigned entries, struct io_uring_params *p)
{
	return (int)syscall(SYS_io_uring_setup, entries, p);
}

static int sys_enter(int fd, unsigned to_submit, unsigned min_complete,
		     unsigned flags, const void *arg, size_t arg_size)
{
	return (int)syscall(SYS_io_uring_enter, fd, to_submit, min_complete,
			    flags, arg, arg_size);
}

static int sys_register(int fd, unsigned op, const void *arg, unsigned n)
{
	return (int)syscall(SYS_io_uring_register, fd, op, arg, n);
}

static void *map(int fd, size_t len, off_t offset)
{
	return mmap(NULL, len, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_POPULATE, fd, offset);
}

/* SQ and CQ rings in one mapping (IORING_FEAT_SINGLE_MMAP), entries in
 * another. */
static int map_rings(struct uring *u, const struct io_uring_params *p)
{
	size_t sq_len = p->sq_off.array + p->sq_entries * sizeof(unsigned);
	size_t cq_len = p->cq_off.cqes + p->cq_entries * sizeof(struct io_uring_cqe);
	char *ring;

	u->ring_map_len = sq_len > cq_len ? sq_len : cq_len;
	u->ring_map = map(u->fd, u->ring_map_len, IORING_OFF_SQ_RING);
	if (u->ring_map == MAP_FAILED)
		return -1;
	u->sqes_len = p->sq_entries * sizeof(struct io_uring_sqe);
	u->sqes = map(u->fd, u->sqes_len, IORING_OFF_SQES);
	if (u->sqes == MAP_FAILED)
		return -1;
	ring = u->ring_map;
	u->sq_head = (unsigned *)(void *)(ring + p->sq_off.head);
	u->sq_tail = (unsigned *)(void *)(ring + p->sq_off.tail);
	u->sq_flags = (unsigned *)(void *)(ring + p->sq_off.flags);
	u->sq_array = (unsigned *)(void *)(ring + p->sq_off.array);
	u->sq_mask = *(unsigned *)(void *)(ring + p->sq_off.ring_mask);
	u->sq_entries = p->sq_entries;
	u->sq_local_tail = *u->sq_tail;
	u->cq_head = (unsigned *)(void *)(ring + p->cq_off.head);
	u->cq_tail = (unsigned *)(void *)(ring + p->cq_off.tail);
	u->cq_mask = *(unsigned *)(void *)(ring + p->cq_off.ring_mask);
	u->cq_entries = p->cq_entries;
	u->cqes = (struct io_uring_cqe *)(void *)(ring + p->cq_off.cqes);
	return 0;
}

/* Every opcode the caller relies on, asked of the kernel: an old kernel
 * would otherwise fail each request with EINVAL, long after start-up. */
static int probe_ops(struct uring *u, const unsigned char *ops, size_t n_ops,
		     char *err)
{
	struct {
		struct io_uring_probe probe;
		struct io_uring_probe_op ops[256];
	} p;

	memset(&p, 0, sizeof p);
	if (sys_register(u->fd, IORING_REGISTER_PROBE, &p, 256) < 0) {
		snprintf(err, NET_ERR_LEN, "io_uring_register(PROBE): %s",
			 strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < n_ops; i++)
		if (ops[i] > p.probe.last_op ||
		    !(p.ops[ops[i]].flags & IO_URING_OP_SUPPORTED)) {
			snprintf(err, NET_ERR_LEN,
				 "io_uring: the kernel lacks opcode %u", ops[i]);
			return -1;
		}
	return 0;
}

int uring_init(struct uring *u, unsigned sq_entries, unsigned cq_entries,
	       unsigned flags, unsigned required_features,
	       const unsigned char *ops, size_t n_ops, char *err)
{
	struct io_uring_params p;

	memset(u, 0, sizeof *u);
	memset(&p, 0, sizeof p);
	p.flags = flags | IORING_SETUP_CQSIZE;
	p.cq_entries = cq_entries;
	u->ring_map = u->sqes = MAP_FAILED;
	u->fd = sys_setup(sq_entries, &p);
	if (u->fd < 0) {
		snprintf(err, NET_ERR_LEN, "io_uring_setup: %s", strerror(errno));
		return -1;
	}
	if ((p.features & required_features) != required_features) {
		snprintf(err, NET_ERR_LEN, "io_uring: the kernel lacks features "
			 "0x%x", required_features & ~p.features);
		uring_free(u);
		return -1;
	}
	if (map_rings(u, &p) < 0) {
		snprintf(err, NET_ERR_LEN, "mmap io_uring: %s", strerror(errno));
		uring_free(u);
		return -1;
	}
	if (probe_ops(u, ops, n_ops, err) < 0) {
		uring_free(u);
		return -1;
	}
	return 0;
}

void uring_free(struct uring *u)
{
	if (u->sqes != MAP_FAILED)
		munmap(u->sqes, u->sqes_len);
	if (u->ring_map != MAP_FAILED)
		munmap(u->ring_map, u->ring_map_len);
	if (u->fd >= 0)
		close(u->fd);
	u->fd = -1;
	u->ring_map = u->sqes = MAP_FAILED;
}

struct io_uring_sqe *uring_sqe(struct uring *u)
{
	unsigned tail = u->sq_local_tail;
	struct io_uring_sqe *sqe;

	if (tail - LOAD_ACQUIRE(u->sq_head) >= u->sq_entries)
		return NULL;
	sqe = &u->sqes[tail & u->sq_mask];
	memset(sqe, 0, sizeof *sqe);
	/* The array maps ring slot to entry one to one: entry i always
	 * goes through slot i. */
	u->sq_array[tail & u->sq_mask] = tail & u->sq_mask;
	u->sq_local_tail = tail + 1;
	return sqe;
}

/* Make the entries handed out visible to the kernel. */
static void publish(struct uring *u)
{
	u->to_submit += u->sq_local_tail - *u->sq_tail;
	STORE_RELEASE(u->sq_tail, u->sq_local_tail);
}

int uring_enter(struct uring *u, int timeout_ms)
{
	struct __kernel_timespec ts = {
		.tv_sec = timeout_ms / 1000,
		.tv_nsec = (long long)(timeout_ms % 1000) * 1000000,
	};
	struct io_uring_getevents_arg arg = {
		.sigmask_sz = _NSIG / 8,
		.ts = timeout_ms < 0 ? 0 : (unsigned long long)(uintptr_t)&ts,
	};
	unsigned flags = IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG;
	unsigned wait_for = timeout_ms == 0 ? 0 : 1;
	int64_t begin = trace_begin();
	int n;

	publish(u);
	n = sys_enter(u->fd, u->to_submit, wait_for, flags, &arg, sizeof arg);
	stat_add(STAT_SYS_URING_ENTER, 1);
	trace_enter(begin, n > 0 ? (unsigned)n : 0,
		    LOAD_ACQUIRE(u->cq_tail) - *u->cq_head);
	if (n > 0) {
		/* IORING_SETUP_SUBMIT_ALL: an entry the kernel refuses still
		 * counts as taken, and its error comes as a completion. */
		u->to_submit -= (unsigned)n;
		stat_add(STAT_URING_SQES, (unsigned long long)n);
	}
	return n < 0 ? -1 : 0;
}

struct io_uring_cqe *uring_cqe(struct uring *u)
{
	unsigned head = *u->cq_head;

	if (head == LOAD_ACQUIRE(u->cq_tail))
		return NULL;
	return &u->cqes[head & u->cq_mask];
}

void uring_cqe_seen(struct uring *u)
{
	STORE_RELEASE(u->cq_head, *u->cq_head + 1);
	stat_add(STAT_URING_CQES, 1);
}

bool uring_cq_overflowed(const struct uring *u)
{
	return (LOAD_ACQUIRE(u->sq_flags) & IORING_SQ_CQ_OVERFLOW) != 0;
}

int uring_buffers_init(struct uring *u, struct uring_buffers *b,
		       unsigned short group, unsigned count, size_t size,
		       char *err)
{
	struct io_uring_buf_reg reg;

	memset(b, 0, sizeof *b);
	b->count = count;
	b->size = size;
	b->group = group;
	b->ring_len = count * sizeof(struct io_uring_buf);
	b->base_len = count * size;
	/* Populated now: the buffers are a fixed cost of the engine, paid
	 * at start-up rather than charged to whichever client first
	 * touches each one. */
	b->ring = mmap(NULL, b->ring_len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	b->base = mmap(NULL, b->base_len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (b->ring == MAP_FAILED || b->base == MAP_FAILED) {
		snprintf(err, NET_ERR_LEN, "mmap %zu buffers: %s", (size_t)count,
			 strerror(errno));
		uring_buffers_free(u, b);
		return -1;
	}
	memset(&reg, 0, sizeof reg);
	reg.ring_addr = (unsigned long long)(uintptr_t)b->ring;
	reg.ring_entries = count;
	reg.bgid = group;
	if (sys_register(u->fd, IORING_REGISTER_PBUF_RING, &reg, 1) < 0) {
		snprintf(err, NET_ERR_LEN, "io_uring_register(PBUF_RING): %s",
			 strerror(errno));
		uring_buffers_free(u, b);
		return -1;
	}
	for (unsigned id = 0; id < count; id++)
		uring_buffer_return(b, id);
	return 0;
}

void uring_buffers_free(struct uring *u, struct uring_buffers *b)
{
	struct io_uring_buf_reg reg = { .bgid = b->group };

	if (b->ring && b->ring != MAP_FAILED) {
		/* A ring already torn down took the registration with it. */
		if (u->fd >= 0)
			sys_register(u->fd, IORING_UNREGISTER_PBUF_RING, &reg, 1);
		munmap(b->ring, b->ring_len);
	}
	if (b->base && b->base != MAP_FAILED)
		munmap(b->base, b->base_len);
	b->ring = NULL;
	b->base = NULL;
}

void uring_buffer_return(struct uring_buffers *b, unsigned id)
{
	struct io_uring_buf *slot = &b->ring->bufs[b->tail & (b->count - 1)];

	slot->addr = (unsigned long long)(uintptr_t)uring_buffer(b, id);
	slot->len = (unsigned)b->size;
	slot->bid = (unsigned short)id;
	b->tail++;
	STORE_RELEASE(&b->ring->tail, b->tail);
}
