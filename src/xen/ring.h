/* SPDX-License-Identifier: MIT */
/*
 * The index protocol every Xen PV shared ring uses (io/ring.h: a header of req_prod,
 * req_event, rsp_prod, rsp_event, then the slots), for every backend kind: publishing
 * responses with the notify check, and the final check for requests that re-arms req_event.
 * The backend's private copies of its indices are the truth; the shared ones are only written
 * here and read once per decision, since the guest can rewrite them at any time.
 */
#ifndef BK_XEN_RING_H
#define BK_XEN_RING_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/macros.h"

/*
 * Requests posted after @req_cons in a ring of @nr_ents, from one read of *@req_prod (then a
 * read barrier: the slots are read after the index that covers them). -EPROTO when the
 * frontend claims more than the ring holds, counted from our consumer index or from the
 * responses we have not written yet (a slot awaiting its response cannot hold a new request):
 * a bogus frontend, fail the device.
 */
static inline int bk_ring_unconsumed(const uint32_t *req_prod, uint32_t req_cons,
				     uint32_t rsp_prod_pvt, uint32_t nr_ents, uint32_t *ret_n)
{
	uint32_t prod = READ_ONCE(*req_prod);

	bk_rmb();
	if (prod - rsp_prod_pvt > nr_ents || prod - req_cons > nr_ents)
		return -EPROTO;
	*ret_n = prod - req_cons;
	return 0;
}

/*
 * RING_PUSH_RESPONSES_AND_CHECK_NOTIFY: publish responses up to @new (the previous
 * publication was @old, our own record of it) into *@rsp_prod; true when the frontend asked
 * to be notified (its *@rsp_event lies in (old, new]).
 */
static inline bool bk_ring_publish_rsp(uint32_t *rsp_prod, const uint32_t *rsp_event, uint32_t old,
				       uint32_t new)
{
	bk_wmb(); /* the frontend sees the responses before the index */
	WRITE_ONCE(*rsp_prod, new);
	bk_mb(); /* the frontend sees the index before we read rsp_event */
	return (uint32_t)(new - READ_ONCE(*rsp_event)) < (uint32_t)(new - old);
}

/*
 * True if at least @needed requests follow @req_cons; otherwise ask for an event at the next
 * request the frontend posts (*@req_event = what it had posted + 1) and look exactly once
 * more, so a request published in between is not missed and a frontend that keeps moving
 * req_prod cannot hold the caller (the only thread serves every device). The caller checks
 * the index again (bk_ring_unconsumed) before it takes anything.
 */
static inline bool bk_ring_wait(const uint32_t *req_prod, uint32_t *req_event, uint32_t req_cons,
				uint32_t needed)
{
	uint32_t prod = READ_ONCE(*req_prod);

	if (prod - req_cons >= needed)
		return true;
	WRITE_ONCE(*req_event, prod + 1);
	bk_mb();
	return READ_ONCE(*req_prod) - req_cons >= needed;
}

/*
 * RING_FINAL_CHECK_FOR_REQUESTS: true if requests follow @req_cons; otherwise ask for an
 * event at the next one (*@req_event = req_cons + 1) and look once more.
 */
static inline bool bk_ring_final_check(const uint32_t *req_prod, uint32_t *req_event,
				       uint32_t req_cons)
{
	return bk_ring_wait(req_prod, req_event, req_cons, 1);
}

#endif
