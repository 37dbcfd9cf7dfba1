/* uring.h -- one io_uring instance, without liburing.
 *
 * The ring knows nothing of services or connections: it is set up, hands
 * out submission entries, submits and waits in one io_uring_enter, and
 * lets its owner walk the completions. A ring of provided buffers
 * (IORING_REGISTER_PBUF_RING) lives beside it, for multishot receives.
 *
 * Every function that can fail fills `err` (NET_ERR_LEN bytes) with the
 * call and the system's reason, as net.h's helpers do.
 */
#ifndef MUXD_URING_H
#define MUXD_URING_H

#include <linux/io_uring.h>
#include <stdbool.h>
#include <stddef.h>

struct uring {
	int fd;
	/* Submission queue: sq_array[tail] names an entry of sqes. */
	unsigned *sq_head, *sq_tail, *sq_flags, *sq_array;
	unsigned sq_mask, sq_entries;
	unsigned sq_local_tail;		/* entries handed out, not yet published */
	unsigned to_submit;		/* published, not yet given to the kernel */
	struct io_uring_sqe *sqes;
	/* Completion queue. */
	unsigned *cq_head, *cq_tail, cq_mask, cq_entries;
	struct io_uring_cqe *cqes;
	void *ring_map;			/* SQ and CQ rings share one mapping */
	size_t ring_map_len, sqes_len;
};

/* Set up a ring of sq_entries submissions and cq_entries completions with
 * `flags` (IORING_SETUP_*), and check that the kernel offers every
 * IORING_FEAT_* in required_features and every opcode in ops[n_ops].
 * Returns 0, or -1 with the reason in err (u is then torn down). */
int uring_init(struct uring *u, unsigned sq_entries, unsigned cq_entries,
	       unsigned flags, unsigned required_features,
	       const unsigned char *ops, size_t n_ops, char *err);
void uring_free(struct uring *u);

/* A zeroed submission entry, or NULL when the queue is full (submit
 * first). Entries handed out are given to the kernel by the next
 * uring_enter. */
struct io_uring_sqe *uring_sqe(struct uring *u);

/* Submit what is queued and wait until at least one completion is there
 * or timeout_ms passed (-1: no limit; 0: do not wait). Returns 0, or -1
 * with errno: ETIME (time out), EINTR (a signal), or a real failure.
 * Counted in --stats as io_uring_enter calls and entries submitted. */
int uring_enter(struct uring *u, int timeout_ms);

/* Completions are read in place: uring_cqe gives the oldest one not yet
 * seen, or NULL; uring_cqe_seen hands it back to the kernel. */
struct io_uring_cqe *uring_cqe(struct uring *u);
void uring_cqe_seen(struct uring *u);

/* Linux 6.17: a multishot receive ends by itself, posting a completion
 * without IORING_CQE_F_MORE, once `bytes` have come in all (its last
 * receive may take a whole buffer past it). The field is sqe->optlen,
 * which older headers call file_index; older kernels ignore it without
 * an error, so whoever relies on it probes for it. */
static inline void uring_recv_cap(struct io_uring_sqe *sqe, unsigned bytes)
{
	sqe->file_index = bytes;
}

/* The kernel had to keep completions aside (IORING_SQ_CQ_OVERFLOW): they
 * come back into the ring with the next uring_enter. */
bool uring_cq_overflowed(const struct uring *u);

/* A ring of `count` (a power of two) buffers of `size` bytes each,
 * registered as buffer group `group`: the kernel picks one for each
 * receive that asks (IOSQE_BUFFER_SELECT) and names it in the completion
 * (IORING_CQE_F_BUFFER, id in the upper 16 bits of flags). */
struct uring_buffers {
	struct io_uring_buf_ring *ring;
	unsigned char *base;		/* count * size bytes, id i at i * size */
	size_t size, ring_len, base_len;
	unsigned count;
	unsigned short group;
	unsigned short tail;		/* ours: where the next returned id goes */
};

/* Register the ring with every buffer in it. Returns 0, or -1 with the
 * reason in err. */
int uring_buffers_init(struct uring *u, struct uring_buffers *b,
		       unsigned short group, unsigned count, size_t size,
		       char *err);
void uring_buffers_free(struct uring *u, struct uring_buffers *b);

static inline unsigned char *uring_buffer(const struct uring_buffers *b,
					  unsigned id)
{
	return b->base + (size_t)id * b->size;
}

/* Give buffer `id` back to the kernel. */
void uring_buffer_return(struct uring_buffers *b, unsigned id);

#endif
