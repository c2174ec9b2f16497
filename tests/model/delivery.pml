/*
 * delivery.pml -- a Promela model of lmrsec's delivery protocol (DESIGN §3),
 * checked exhaustively with spin by tests/model/check-model.sh.
 *
 * Actors: the IWF sends N key messages and retransmits each until it sees a
 * 200; the agent stores, answers, offers, and removes on ACK; the consumer
 * ACKs, NACKs or vanishes; the agent may crash (kill -9) at any step and
 * restart. What survives a crash is what the spool file holds (spool_row,
 * seen); everything else (in_flight, channels) is lost.
 *
 * Names follow the code (agent/broker.c, agent/spool.c); broker.c points
 * back here at each state of a message:
 *   STORED    spool_store() committed message + seen rows  (broker_accept)
 *   OFFERED   handed to a consumer, in flight              (offer)
 *   ACKING    the consumer's ACK taken, deletion queued    (broker_ack)
 *             for the group commit; not offered again meanwhile
 *   ACKED     spool_remove_batch() committed, ACK confirmed (acks_commit)
 *             (not fsync'd: it survives kill -9, modelled here; a power
 *             loss may bring the row back, which is outside this model)
 *   NACKED    back in the queue                            (broker_nack)
 *   released  consumer gone: back in the queue             (broker_unsubscribe)
 *   reloaded  after a restart, every row is queued again   (broker_new)
 * Message TTL expiry is outside this model (it is the one deliberate drop,
 * counted and reported).
 *
 * Properties:
 *   no_loss     every message answered 200 is eventually ACKed by a
 *               consumer, given finitely many crashes, NACKs and vanishes
 *               (checked with weak fairness);
 *   asserts     nothing is removed before its consumer's ACK; a re-sent
 *               MESSAGE never creates a second stored message; a message
 *               answered 200 is always in the spool or already ACKed.
 */

#define N         2   /* messages the IWF sends */
#define MAXCRASH  2   /* agent crashes (kill -9) */
#define MAXFAULT  2   /* consumer NACKs + vanishes */

mtype = { MESSAGE, OK200, DELIVERY, ACK, NACK, GONE };

/* the spool file: survives a crash */
bool spool_row[N];
bool seen[N];
/* agent memory: lost in a crash */
bool in_flight[N];
bool acking[N];          /* ACK taken, deletion waiting for the group commit */

/* ghost variables for the properties */
bool answered[N];        /* the IWF got a 200 for it */
bool consumer_acked[N];  /* the consumer sent ACK for it */
bool removed[N];         /* the agent removed it after an ACK */
byte stores[N];          /* rows created for this dedupe key */
byte crashes;
byte faults;

chan sip_req = [N] of { mtype, byte };
chan sip_resp = [N] of { mtype, byte };
chan to_consumer = [N] of { mtype, byte };
chan from_consumer = [N] of { mtype, byte };

inline lose_wire()
{
	/* A crash loses what the agent had not read or not yet written out;
	 * answers already sent (sip_resp) still reach the IWF. */
	do
	:: sip_req ? _, _
	:: to_consumer ? _, _
	:: from_consumer ? _, _
	:: empty(sip_req) && empty(to_consumer) && empty(from_consumer) -> break
	od
}

inline crash()
{
	crashes++;
	lose_wire();
	/* reloaded: every spooled row is queued again, nothing in flight */
	for (j : 0 .. N - 1) { in_flight[j] = false; acking[j] = false }
}

active proctype iwf()
{
	byte m, r, k;
	do
	:: atomic { m < N && !answered[m] && nfull(sip_req) -> sip_req ! MESSAGE, m }   /* send / retransmit */
	:: atomic { sip_resp ? OK200, r -> answered[r] = true }
	:: atomic { m < N && answered[m] -> m++ }
	:: m == N -> break
	od;
end_iwf:
	do
	:: sip_resp ? OK200, k -> skip   /* late answers to retransmissions */
	od
}

active proctype agent()
{
	byte m, j;
end_agent:
	do
	/* broker_accept: an incoming MESSAGE */
	:: atomic { sip_req ? MESSAGE, m ->
		if
		:: seen[m] -> sip_resp ! OK200, m        /* duplicate: 200 again, no new row */
		:: !seen[m] ->
			if
			:: crashes < MAXCRASH -> crash()     /* died before the commit: no 200 */
			:: true ->
				/* STORED: spool_store() commits message + seen in one transaction */
				assert(stores[m] == 0);
				stores[m]++;
				spool_row[m] = true;
				seen[m] = true;
				if
				:: crashes < MAXCRASH -> crash() /* died after the commit, before the 200 */
				:: true -> sip_resp ! OK200, m
				fi
			fi
		fi }
	/* OFFERED: dispatch() hands a queued message to the consumer */
	:: atomic { (spool_row[0] && !in_flight[0] && !acking[0] && nfull(to_consumer)) ->
		in_flight[0] = true; to_consumer ! DELIVERY, 0 }
	:: atomic { (spool_row[1] && !in_flight[1] && !acking[1] && nfull(to_consumer)) ->
		in_flight[1] = true; to_consumer ! DELIVERY, 1 }
	/* ACKING: broker_ack() queues the deletion for the group commit */
	:: atomic { from_consumer ? ACK, m ->
		if
		:: in_flight[m] && !acking[m] -> acking[m] = true
		:: else -> skip                           /* stale ACK: -ENOENT */
		fi }
	/* ACKED: acks_commit() removes the row, then confirms the ACK */
	:: atomic { acking[0] -> assert(consumer_acked[0]);
		spool_row[0] = false; in_flight[0] = false; acking[0] = false; removed[0] = true }
	:: atomic { acking[1] -> assert(consumer_acked[1]);
		spool_row[1] = false; in_flight[1] = false; acking[1] = false; removed[1] = true }
	/* NACKED: broker_nack() returns it to the queue */
	:: atomic { from_consumer ? NACK, m -> in_flight[m] = false }
	/* released: broker_unsubscribe() when the consumer goes away */
	:: atomic { from_consumer ? GONE, m ->
		for (j : 0 .. N - 1) { in_flight[j] = false } }
	/* kill -9 at any other moment */
	:: atomic { crashes < MAXCRASH -> crash() }
	od
}

active proctype consumer()
{
	byte m;
end_consumer:
	do
	:: atomic { to_consumer ? DELIVERY, m ->
		if
		:: consumer_acked[m] = true; from_consumer ! ACK, m
		:: faults < MAXFAULT -> faults++; from_consumer ! NACK, m
		:: faults < MAXFAULT -> faults++;
			/* vanishes; what was queued to it is lost with the connection */
			do
			:: to_consumer ? _, _
			:: empty(to_consumer) -> break
			od;
			from_consumer ! GONE, 0
		fi }
	od
}

/* A message answered 200 is always kept or already ACKed. */
active proctype kept_invariant()
{
end_inv:
	do
	:: atomic { (answered[0] && !spool_row[0] && !removed[0]) ||
		    (answered[1] && !spool_row[1] && !removed[1]) -> assert(false) }
	od
}

ltl no_loss { [] ((answered[0] -> <> (consumer_acked[0] && removed[0])) &&
                  (answered[1] -> <> (consumer_acked[1] && removed[1]))) }
