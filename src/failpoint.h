/* failpoint.h - named crash-injection points, compiled in only with
 * `-Dfailpoints=true` (test builds). A release build has none: the macro is
 * empty and failpoint.c is not built.
 *
 * PXS_FAILPOINT=<name>[:kill|stop|exit|sleep=<ms>][:<nth>] in the
 * environment makes the nth hit (default 1st) of that point in a process
 * raise SIGKILL (default), raise SIGSTOP, _exit(PXS_FAILPOINT_EXIT) or
 * sleep. Points sit inside critical sections and between the steps of
 * every multi-step change, so that tests can kill a process exactly there.
 */
#ifndef PXS_FAILPOINT_H
#define PXS_FAILPOINT_H

/* id, name: every point, in one list (tests iterate over it). */
#define PXS_FAILPOINT_LIST(X)                                                  \
	X(FP_INIT_AFTER_CREATE, "init.after_create")                           \
	X(FP_INIT_AFTER_SIZE, "init.after_size")                               \
	X(FP_INIT_MID_TABLE, "init.mid_table")                                 \
	X(FP_INIT_BEFORE_PUBLISH, "init.before_publish")                       \
	X(FP_PROC_REGISTER_LOCKED, "proc.register_locked")                     \
	X(FP_PUT_AFTER_ALLOC, "put.after_alloc")                               \
	X(FP_INSERT_HOME_LOCKED, "insert.home_locked")                         \
	X(FP_INSERT_SCANNED, "insert.scanned")                                 \
	X(FP_INSERT_SLOT_LOCKED, "insert.slot_locked")                         \
	X(FP_INSERT_AFTER_PUBLISH, "insert.after_publish")                     \
	X(FP_SET_LOCKED, "set.slot_locked")                                    \
	X(FP_SET_AFTER_ALLOC, "set.after_alloc")                               \
	X(FP_SET_AFTER_PUBLISH, "set.after_publish")                           \
	X(FP_RESERVE_AFTER_ALLOC, "reserve.after_alloc")                       \
	X(FP_RESERVE_AFTER_PUBLISH, "reserve.after_publish")                   \
	X(FP_COMMIT_BEFORE_PUBLISH, "commit.before_publish")                   \
	X(FP_COMMIT_AFTER_PUBLISH, "commit.after_publish")                     \
	X(FP_STREAM_BEFORE_COMMIT, "stream.before_commit")                     \
	X(FP_STREAM_AFTER_COMMIT, "stream.after_commit")                       \
	X(FP_STREAM_MID_DELETE, "stream.mid_delete")                           \
	X(FP_EVICT_LOCKED, "evict.slot_locked")                                \
	X(FP_EVICT_AFTER_UNPUBLISH, "evict.after_unpublish")                   \
	X(FP_PIN_BETWEEN_COUNTS, "pin.between_counts")                         \
	X(FP_GET_PINNED_BEFORE_RETURN, "get.pinned_before_return")             \
	X(FP_RELEASE_BETWEEN_COUNTS, "release.between_counts")                 \
	X(FP_RELEASE_AFTER_UNPUBLISH, "release.after_unpublish")               \
	X(FP_WAIT_REGISTERED, "wait.registered")                               \
	X(FP_WAIT_WOKEN_BEFORE_PIN, "wait.woken_before_pin")                   \
	X(FP_WAIT_PINNED_BEFORE_RETURN, "wait.pinned_before_return")           \
	X(FP_WAIT_RECORDED, "wait.recorded")                                   \
	X(FP_BELL_RECORDED, "bell.recorded")                                   \
	X(FP_BELL_ASLEEP, "bell.asleep")                                       \
	X(FP_RECOVER_BELL, "recover.bell")                                     \
	X(FP_REPLACE_LOCKED, "replace.slot_locked")                            \
	X(FP_NAMED_FUTURE_INSERTED, "named_future.inserted")                   \
	X(FP_EXPIRE_LOCKED, "expire.slot_locked")                              \
	X(FP_HEAP_LOCKED, "heap.locked")                                       \
	X(FP_ALLOC_SPLIT, "alloc.split")                                       \
	X(FP_ALLOC_CARVE, "alloc.carve")                                       \
	X(FP_ALLOC_RUN_SPLIT, "alloc.run_split")                               \
	X(FP_FREE_COALESCE, "free.coalesce")                                   \
	X(FP_FREE_LINK, "free.link")                                           \
	X(FP_RECOVER_SLOT, "recover.slot")                                     \
	X(FP_RECOVER_HEAP, "recover.heap")                                     \
	X(FP_RECOVER_TABLE, "recover.table")                                   \
	X(FP_GATE_CLOSED, "table.gate_closed")                                 \
	X(FP_GROW_ALLOCATED, "grow.allocated")                                 \
	X(FP_GROW_BEFORE_PUBLISH, "grow.before_publish")                       \
	X(FP_REAP_MID_PINS, "reap.mid_pins")                                   \
	X(FP_REAP_MID_OWNERSHIP, "reap.mid_ownership")                         \
	X(FP_REAP_MID_LEAKS, "reap.mid_leaks")                                 \
	X(FP_REAP_MID_WAITS, "reap.mid_waits")

enum pxs_failpoint {
#define PXS_FP_ENUM(id, name) id,
	PXS_FAILPOINT_LIST(PXS_FP_ENUM)
#undef PXS_FP_ENUM
	PXS_FP_COUNT
};

/** Exit status of the `exit` action. */
#define PXS_FAILPOINT_EXIT 86

#ifdef PXS_FAILPOINTS
void pxs__failpoint(enum pxs_failpoint fp);
/** The names of all points, indexed by enum pxs_failpoint. */
const char *const *pxs__failpoint_names(void);
#define PXS_FAILPOINT(fp) pxs__failpoint(fp)
#else
#define PXS_FAILPOINT(fp) ((void)0)
#endif

#endif
