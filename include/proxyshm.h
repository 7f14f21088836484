/**
 * @file proxyshm.h
 * @brief proxyshm: proxy futures and zero-copy objects in POSIX shared memory.
 *
 * @mainpage proxyshm
 *
 * proxyshm lets one process hand another a reference to data that may not
 * exist yet. A *store* is a named POSIX shared-memory segment (shm_open +
 * mmap) that any process of the same user can attach. It holds a hash table
 * of slots and a heap for payloads. A slot is either an *object* (a value,
 * present at once) or a *future* (pending until a producer sets it). A
 * consumer that waits on a future sleeps in the kernel on the slot's futex
 * and wakes within microseconds of the set; it then reads the payload in
 * place through a pinned *view*, without a copy.
 *
 * Keys are 128-bit values (#pxs_key), random or derived from a name, so
 * unrelated processes can agree on them. A *proxy* (#pxs_proxy) is a lazy,
 * serialisable reference `pxs://<store>/<key>` that a process started
 * independently can resolve.
 *
 * @section errors_sec Errors
 * Every function that can fail returns 0 (or a documented non-negative
 * value) on success and a negative errno value on failure. #pxs_strerror()
 * describes any of them. No function prints, aborts or exits on bad input.
 * The codes with a meaning of our own are:
 * - -EPROTO: not a proxyshm segment of this layout version, or a value read
 *   from the segment failed validation (another process corrupted it);
 * - -EOWNERDEAD: the process that owned a pending future died before setting
 *   it: the future is *abandoned* and will never be set;
 * - -ECANCELED: the future was evicted while the caller waited on it;
 * - -EALREADY: the future was already set;
 * - -EAGAIN: the future is still pending;
 * - -ENOTRECOVERABLE: a lock whose holder died left state that could not be
 *   repaired; the segment must be recreated. Once a segment is in that
 *   state, every function that takes a store returns it.
 *
 * Two codes can come from any function that takes a store, and each
 * @return list names them: -ENOTRECOVERABLE as above, and -EUSERS from the
 * first call in a child after fork(), which registers the child in the
 * segment's table of attached processes and fails when that table is
 * full (#pxs_open() says the same when attaching).
 *
 * @section process_sec Processes, threads and fork
 * A #pxs_store handle may be used by many threads at once. A handle opened
 * before fork() keeps working in the child; the child is a new process for
 * the purposes of ownership (futures it creates belong to it). Views pinned
 * by the parent before the fork belong to the parent: releasing them in the
 * child only forgets them locally.
 *
 * @section redis_sec Redis stores
 * A name "redis://HOST:PORT/NAME" (see pxs_open()) opens the store NAME
 * kept in the Redis server at HOST:PORT, over hiredis; every function takes
 * such a handle and keeps its meaning, except where its documentation says
 * otherwise. On a Redis handle:
 * - a view (pxs_get(), pxs_future_wait()) is a private copy held until
 *   pxs_release(), not zero-copy; a reservation is client memory until
 *   pxs_future_commit();
 * - every function that talks to the server may also return -ECONNREFUSED,
 *   -EHOSTUNREACH (unreachable, or an unknown host), -ETIMEDOUT (no answer
 *   within #pxs_options.command_timeout_ms, or no connection within
 *   connect_timeout_ms), -ECONNRESET (the connection was lost during the
 *   call; the next call reconnects), -EIO, -ENOMEM, -EAGAIN (the server is
 *   loading or busy), -EROFS (a read-only replica), and -EPROTO for a reply
 *   or a key of the store's namespace that is not of this layout (a key
 *   overwritten by another client);
 * - a future's owner is the handle: its death, pxs_close(), or the loss of
 *   its connection to the server abandons its pending futures, and waiters
 *   learn it within about 0.5 s;
 * - a wait (pxs_future_wait(), pxs_future_wait_any(), pxs_open() with
 *   #pxs_options.wait_ms) blocks in the server; if the server goes away it
 *   reconnects every 0.2 s within its timeout and goes on waiting on what
 *   the server kept;
 * - pxs_expire() is Redis's own TTL (PEXPIRE of the object's keys);
 * - pxs_stat() counts objects, pending and abandoned futures (a scan of the
 *   store); its other fields are 0; pxs_proc_list() lists nothing;
 *   pxs_check() validates every object's fields; pxs_reap() abandons the
 *   pending futures of dead owners and returns how many;
 * - streams (pxs_stream_new() and the calls after it) are Redis Streams:
 *   an item's view is a private copy too; readers, reservations in flight
 *   and group members are handles (their owner connections), found dead
 *   within about 0.5 s of the loss of that connection; the per-call notes
 *   say what differs;
 * - without persistence on the server, a server restart loses the store.
 * In a build without hiredis, a redis:// name is -EPROTONOSUPPORT.
 *
 * @section caveats_sec Caveats
 * - Segments and their contents persist after every process exits, until
 *   #pxs_unlink() (or a reboot). They live in /dev/shm, which is often
 *   small in containers: a store larger than the free space there fails at
 *   creation or allocation with -ENOSPC, never later with SIGBUS.
 * - A future belongs to the process that created or claimed it. If that
 *   process dies (or closes the handle it used) before setting it, the
 *   future is abandoned: waiters get -EOWNERDEAD instead of hanging.
 * - Slot locks are robust mutexes: a process that dies holding one does not
 *   wedge the others; the next locker repairs the slot.
 * - Every process with write access to the segment is trusted not to be
 *   malicious: a peer can make calls fail (-EPROTO) but the library checks
 *   every offset it reads before using it.
 */
#ifndef PROXYSHM_H
#define PROXYSHM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define PXS_API __attribute__((visibility("default")))
#else
#define PXS_API
#endif

/** @defgroup version Version
 *  @{ */
#define PXS_VERSION_MAJOR 0 /**< incompatible API changes */
#define PXS_VERSION_MINOR 1 /**< compatible additions */
#define PXS_VERSION_PATCH 0 /**< fixes */

/**
 * @brief The library's version, as "MAJOR.MINOR.PATCH".
 * @return a static string, never NULL, never to be freed; the version of
 *   the library loaded at run time, which may differ from the
 *   #PXS_VERSION_MAJOR and friends the program was compiled with.
 * @note Thread-safe; no state.
 */
PXS_API const char *pxs_version(void);
/** @} */

/** @defgroup errors Errors
 *  @{ */
/**
 * @brief Describe an error code returned by any pxs_ function.
 * @param[in] err a negative errno value as returned (0 and positive values
 *                are accepted too)
 * @return static English text, one short line without a trailing period,
 *   never NULL, never to be freed; "unknown error" for codes no function
 *   of the library returns.
 * @note Thread-safe; no state.
 */
PXS_API const char *pxs_strerror(int err);
/** @} */

/** @defgroup keys Keys
 *  @{ */

/** A 128-bit key. The all-zero key is invalid everywhere. */
typedef struct pxs_key {
	uint64_t hi; /**< high 64 bits (first 16 hex digits) */
	uint64_t lo; /**< low 64 bits (last 16 hex digits) */
} pxs_key;

/** Buffer size for #pxs_key_format(): 32 hex digits and a NUL. */
#define PXS_KEY_STRLEN 33

/**
 * @brief Derive a key from a name with XXH3-128, so that unrelated processes
 * can agree on keys ("sim/step/42").
 * @param[in] name bytes of the name (may be NULL when @p len is 0)
 * @param[in] len  length in bytes
 * @return the key; never the all-zero key (that one hash value is remapped).
 *   The same name gives the same key in every process and on every machine.
 * @note Pure function; thread-safe.
 */
PXS_API pxs_key pxs_key_from_name(const void *name, size_t len);

/**
 * @brief Write @p k as 32 lowercase hex digits and a NUL.
 * @param[in]  k   the key (the zero key is formatted too)
 * @param[out] buf at least #PXS_KEY_STRLEN bytes
 * @return 0, or -EINVAL (@p buf is NULL).
 * @note Pure function; thread-safe.
 */
PXS_API int pxs_key_format(pxs_key k, char buf[PXS_KEY_STRLEN]);

/**
 * @brief Parse exactly 32 lowercase hex digits (and nothing else) into @p k.
 * @param[in]  s the string, NUL-terminated
 * @param[out] k the key; written only on success
 * @return 0, or -EINVAL (@p s or @p k is NULL, @p s is not exactly 32
 *   lowercase hex digits, or it encodes the all-zero key).
 * @note Pure function; thread-safe.
 */
PXS_API int pxs_key_parse(const char *s, pxs_key *k);

/**
 * @brief Compare two keys.
 * @param[in] a a key
 * @param[in] b another key
 * @return 1 if @p a and @p b are equal, else 0; never an error.
 * @note Pure function; thread-safe.
 */
PXS_API int pxs_key_equal(pxs_key a, pxs_key b);
/** @} */

/** @defgroup stores Stores
 *  @{ */

/** Opaque handle to an attached segment. */
typedef struct pxs_store pxs_store;

/** #pxs_options flag: create the segment if it does not exist. */
#define PXS_CREATE 0x1u
/** #pxs_options flag: with #PXS_CREATE, fail with -EEXIST if it exists. */
#define PXS_EXCL 0x2u
/**
 * #pxs_options flag: attach for inspection only, writing nothing. The
 * segment is opened read-only and mapped without write access; the handle
 * takes no entry in the process table (it is not counted in
 * #pxs_stats.processes), allocates no pin records and takes no lock, so
 * inspecting a store never changes it and never waits for a process that
 * holds a lock (a stopped one, or a lock word that is garbage). pxs_stat(),
 * pxs_list(), pxs_proc_list(), pxs_check(), pxs_exists() and
 * pxs_key_name() work on such a handle and read the segment without locks,
 * as a snapshot; every call that would change the store or pin a value
 * returns -EROFS and changes nothing (the stream calls: -ENOTSUP). Read permission on the segment is enough. Not with
 * #PXS_CREATE; shared-memory stores only.
 */
#define PXS_RDONLY 0x4u
/**
 * #pxs_options flag: also accept a segment owned by the user
 * #pxs_options.trusted_owner. Without it a segment owned by another user
 * is refused (-EPERM): anyone who can write /dev/shm could have created it
 * under the name first, to read or feed what is stored there. With it, a
 * store that one user created with a group mode (#pxs_options.mode 0660)
 * can be used by the members of that group who trust that user. The mode
 * still applies: read-write use needs write permission, #PXS_RDONLY read
 * permission. Shared-memory stores only.
 */
#define PXS_TRUST_OWNER 0x8u

/** Default segment size when #pxs_options.size is 0: 256 MiB. */
#define PXS_DEFAULT_SIZE ((size_t)256 << 20)
/** Smallest segment size accepted. */
#define PXS_MIN_SIZE ((size_t)1 << 20)
/** Largest capacity (live objects and futures) accepted. */
#define PXS_MAX_CAPACITY (1u << 26)
/** Longest spin accepted by #pxs_options.spin_us and
 *  pxs_future_wait_spin(), in microseconds. */
#define PXS_MAX_SPIN_US 1000000u
/** Longest segment name accepted, without the leading '/'. */
#define PXS_NAME_MAX 200
/** Longest store name of either kind: "redis://" + a host of up to 253
 *  characters (or a bracketed IPv6 address, shorter) + ":" + a port + "/" + a name
 *  of up to #PXS_NAME_MAX characters. */
#define PXS_STORE_NAME_MAX (8 + 253 + 1 + 5 + 1 + PXS_NAME_MAX)
/** Default #pxs_options.connect_timeout_ms of a Redis store. */
#define PXS_REDIS_CONNECT_TIMEOUT_MS 2000u
/** Default #pxs_options.command_timeout_ms of a Redis store. */
#define PXS_REDIS_COMMAND_TIMEOUT_MS 5000u

/** Options for #pxs_open(). Zero-initialise, then set what you need. */
typedef struct pxs_options {
	/** Segment bytes when creating, at least #PXS_MIN_SIZE;
	 *  0 = #PXS_DEFAULT_SIZE. */
	size_t size;
	/** 0 (the default): no limit to choose; the slot table starts at
	 *  1,024 slots (768 live objects and futures) and grows inside the
	 *  heap, each new table twice the last, until the heap has no room
	 *  for the next one. Otherwise the most live objects and futures at
	 *  once, at most #PXS_MAX_CAPACITY, fixed at creation: the table
	 *  (256 B per unit, taken from the size) is backed when the store is
	 *  created. A full table refuses insertions with -ENOSPC
	 *  (#pxs_stats.slots_used equals #pxs_stats.capacity then). */
	uint32_t capacity;
	/** Permission bits when creating, within 0777; 0 = 0600. Applied
	 *  exactly, whatever the umask. */
	mode_t mode;
	/** 0 (attach only), #PXS_CREATE, or #PXS_CREATE | #PXS_EXCL; or
	 *  #PXS_RDONLY (attach only). Any of these with #PXS_TRUST_OWNER. */
	unsigned flags;
	/** How long pxs_future_wait() on this handle polls the future before
	 *  it sleeps in the kernel, in microseconds, at most
	 *  #PXS_MAX_SPIN_US; 0 (the default) sleeps at once. Applies to this
	 *  handle whether it creates or attaches. See
	 *  pxs_future_wait_spin(). */
	uint32_t spin_us;
	/** Redis stores only: how long pxs_open() and a reconnection may take
	 *  to connect, in milliseconds; 0 = #PXS_REDIS_CONNECT_TIMEOUT_MS. */
	uint32_t connect_timeout_ms;
	/** Redis stores only: how long a reply may take, in milliseconds (a
	 *  wait adds its own timeout to it); 0 =
	 *  #PXS_REDIS_COMMAND_TIMEOUT_MS. */
	uint32_t command_timeout_ms;
	/** Attaching (no #PXS_CREATE): how long to wait for the segment to
	 *  be created, in milliseconds; 0 (the default) does not wait, < 0
	 *  waits without limit. The wait sleeps on an inotify watch of
	 *  /dev/shm, it does not poll; on a Redis store it blocks in the
	 *  server on the store's creation token. */
	long wait_ms;
	/** With #PXS_TRUST_OWNER: the user (uid) whose segments are accepted
	 *  besides the caller's own; ignored without that flag. */
	uid_t trusted_owner;
} pxs_options;

/**
 * @brief Attach to the segment @p name, creating it if asked.
 *
 * Creation is race-free: the creator builds the segment under a private
 * name and publishes it with one atomic link, so an attacher never sees a
 * half-initialised segment, and two processes creating the same name at
 * the same moment both succeed on one segment. When the segment exists, the
 * size, capacity and mode in @p opts are ignored.
 *
 * @param[in]  name '/' followed by 1..#PXS_NAME_MAX characters from
 *                  [A-Za-z0-9._-], not "/." or "/..", not beginning with
 *                  "/.pxs-" (reserved for unfinished segments); or a Redis
 *                  store "redis://HOST:PORT/NAME": HOST 1..253 characters
 *                  of [A-Za-z0-9.-] or a bracketed IPv6 address, PORT
 *                  1..65535 without leading zeros, NAME as a segment name
 *                  without its '/' (see @ref redis_sec; size, capacity and
 *                  mode are ignored there)
 * @param[in]  opts NULL to attach to an existing segment only
 * @param[out] out  the handle; set to NULL on failure
 * @return 0, or:
 *   -EINVAL (NULL @p name or @p out, a bad name, unknown flags,
 *   #PXS_RDONLY with #PXS_CREATE, #PXS_RDONLY or #PXS_TRUST_OWNER on a
 *   Redis store, size below #PXS_MIN_SIZE, capacity above
 *   #PXS_MAX_CAPACITY or too large for size, mode outside 0777, spin_us
 *   above #PXS_MAX_SPIN_US);
 *   -ENOENT (no such segment and no #PXS_CREATE);
 *   -EEXIST (#PXS_CREATE|#PXS_EXCL and it exists);
 *   -EPROTO (not a proxyshm segment, another layout version, a header
 *   that fails validation, with #PXS_RDONLY a file whose metadata is not
 *   all backed by memory, or a process-table lock word that is not a
 *   lock);
 *   -EPERM (the segment is owned by another user, and not by the
 *   #pxs_options.trusted_owner of #PXS_TRUST_OWNER);
 *   -EACCES (permission denied by the mode);
 *   -ETIMEDOUT (not with #PXS_RDONLY: the segment's process-table lock
 *   was not had within a second, because a stopped process holds it or
 *   its lock word is garbage; nothing changed);
 *   -ENOSPC (/dev/shm cannot hold the segment's metadata);
 *   -EMFILE, -ENFILE, -ENOMEM (out of descriptors or memory);
 *   -EUSERS (the segment's table of attached processes is full);
 *   -EAGAIN (creation kept racing with other creators and removers: retry);
 *   -ENOTRECOVERABLE (the segment's process-table lock cannot be repaired);
 *   for a Redis store also -EPROTONOSUPPORT (built without hiredis) and the
 *   connection errors of @ref redis_sec (-ECONNREFUSED, -EHOSTUNREACH,
 *   -ETIMEDOUT, -ECONNRESET, -EIO), -EPROTO (NAME's keys are not a store of
 *   this layout), -EROFS.
 *   With #pxs_options.wait_ms, -ENOENT comes only once that long has
 *   passed without the segment appearing, and the wait can also fail with
 *   -EMFILE, -ENFILE or -ENOMEM (no inotify instance or watch to be had).
 * @note Thread-safe: any number of threads may open the same or different
 *   segments at once, and use one handle together. The handle survives
 *   fork(): the child's first call on it registers the child as a process
 *   of its own (on a Redis store it opens connections of its own). Opening
 *   one segment twice in a process gives two handles, each a separate
 *   owner of futures.
 *   A wait for the segment sleeps in the calling thread only; a creator
 *   needs no cooperation (it publishes with a rename, which the watch sees).
 *   Attaching waits at most a second in all for the locks it takes (the
 *   process table's, then the heap's for this handle's pin records, which
 *   are otherwise allocated at its first pin); a #PXS_RDONLY attach takes
 *   none and writes nothing. A #PXS_RDONLY handle stays read-only in a
 *   child after fork() and registers nothing there either.
 */
PXS_API int pxs_open(const char *name, const pxs_options *opts,
		     pxs_store **out);

/**
 * @brief Detach. Futures owned through this handle that are still pending
 * become abandoned. Views from it must be released first; views still
 * pinned stay pinned in the segment until the process exits and its pins
 * are reclaimed.
 * @param[in] s the handle, or NULL (a no-op); freed, not to be used again
 * @return 0 (also for NULL); never an error.
 * @note No other thread may use @p s during or after the call. A child
 *   after fork() may close its copy of the handle: that only unmaps it and
 *   leaves the parent's futures and pins alone. It waits at most about two
 *   seconds for the locks it takes (a stopped process may hold them):
 *   what it could not do then is left for the next attacher to reclaim,
 *   as for a process that died.
 */
PXS_API int pxs_close(pxs_store *s);

/**
 * @brief Remove segment @p name.
 *
 * Attached processes keep working on it; new pxs_open() calls get -ENOENT
 * (or create a new one). It also removes the private objects of creators
 * of @p name that died before publishing their segment. For a Redis store
 * it deletes every key of the store at once: handles still open find
 * their keys gone.
 * @param[in] name a segment name, as for pxs_open(), or a Redis store name
 * @return 0, or -EINVAL (NULL or bad name), -ENOENT (no such segment),
 *   -EACCES (no write permission on /dev/shm), -EPERM (/dev/shm is sticky
 *   and the segment belongs to another user); for a Redis store
 *   -EPROTONOSUPPORT, -ECONNREFUSED, -EHOSTUNREACH, -ETIMEDOUT, -ECONNRESET,
 *   -EIO, -EPROTO (see @ref redis_sec) instead of -EACCES/-EPERM.
 * @note Thread-safe; takes no handle and no lock. The memory is freed
 *   when the last process attached to the segment closes or exits.
 */
PXS_API int pxs_unlink(const char *name);

/**
 * @brief The name @p s was opened with (with its leading '/').
 * @param[in] s the handle, or NULL
 * @return the name, valid until pxs_close(); NULL if @p s is NULL.
 * @note Thread-safe; the name never changes. Valid in a child after fork().
 */
PXS_API const char *pxs_store_name(const pxs_store *s);
/** @} */

/** @defgroup objects Objects
 *  @{ */

/**
 * A zero-copy view of a value inside the segment, pinned until
 * #pxs_release(). The memory stays valid and unchanged while pinned, even
 * if the key is evicted meanwhile.
 */
typedef struct pxs_view {
	/** First byte of the value; non-NULL, even for size 0. */
	const void *data;
	/** Value size in bytes. */
	size_t size;
	/** Private to the library; do not touch. */
	uint64_t priv[3];
} pxs_view;

/**
 * @brief Copy @p size bytes into the segment under a fresh random key.
 * @param[in]  s       store from pxs_open()
 * @param[in]  data    bytes (may be NULL only when @p size is 0)
 * @param[in]  size    0 is a valid object
 * @param[out] key_out the new key; written only on success
 * @return 0, or -EINVAL (NULL @p s or @p key_out, NULL @p data with a
 *   non-zero @p size), -ENOSPC (heap or slot table full, even after
 *   reclaiming what dead processes held; nothing changed; pxs_stat()'s @c
 *   slots_used equal to @c capacity says which), -EPROTO (the heap or table
 *   failed validation), -EUSERS (first call in a forked child: process table
 *   full), -EROFS (a #PXS_RDONLY handle; nothing changed), -ENOTRECOVERABLE.
 * @note Thread-safe; any process of the store may call it. The object
 *   belongs to no process: it stays until evicted, whoever exits.
 */
PXS_API int pxs_put(pxs_store *s, const void *data, size_t size,
		    pxs_key *key_out);

/**
 * @brief As pxs_put() under a chosen key. A key that holds an abandoned
 * future (its owner died before setting it) is taken over: the value
 * replaces the future, as when a restarted producer puts its results again.
 * An expired key (pxs_expire()) is absent and so free to use.
 * @param[in] s    store from pxs_open()
 * @param[in] key  the key, not the all-zero one
 * @param[in] data bytes (may be NULL only when @p size is 0)
 * @param[in] size 0 is a valid object
 * @return 0, or -EINVAL (NULL @p s, zero key, NULL @p data with a non-zero
 *   @p size), -EEXIST (the key holds an object or a future that is not
 *   abandoned; nothing changed), -ENOSPC (heap or slot table full; nothing
 *   changed; pxs_stat()'s @c slots_used says which), -EPROTO (the heap or
 *   table failed validation), -EUSERS (first call in a forked child: process
 *   table full), -EROFS (a #PXS_RDONLY handle; nothing changed),
 *   -ENOTRECOVERABLE.
 * @note Thread-safe: of two processes putting one key at once, one
 *   succeeds and the other gets -EEXIST. A put wakes the waiters of
 *   pxs_future_wait() on this key, also those that began waiting before
 *   the key existed.
 */
PXS_API int pxs_put_at(pxs_store *s, pxs_key key, const void *data,
		       size_t size);

/** Longest name that pxs_put_named() keeps, in bytes (no NUL). */
#define PXS_KEY_NAME_MAX 255

/**
 * @brief As pxs_put_at() under the key of @p name
 * (pxs_key_from_name(name, strlen(name))), keeping the name with the
 * value so that pxs_key_name() (and `proxyshm ls`) can show it.
 * The name is stored in the value's heap block, after its bytes, and
 * published and freed with it: it is there whole or not at all. On a Redis
 * store the name is not kept (the put is pxs_put_at() under its key).
 * @param[in]  s       store from pxs_open()
 * @param[in]  name    NUL-terminated, 1 to #PXS_KEY_NAME_MAX bytes
 * @param[in]  data    bytes (may be NULL only when @p size is 0)
 * @param[in]  size    0 is a valid object
 * @param[out] key_out the key, written on success; may be NULL
 * @return 0, or -EINVAL (NULL @p s, NULL, empty or too long @p name, NULL
 *   @p data with a non-zero @p size), -EEXIST (the key holds an object or a
 *   future that is not abandoned; nothing changed), -ENOSPC (heap or slot
 *   table full; nothing changed), -EPROTO (the heap or table failed
 *   validation), -EUSERS (first call in a forked child: process table
 *   full), -ENOTRECOVERABLE.
 * @note Thread-safe, as pxs_put_at(). The name costs its length plus two
 *   bytes of heap.
 */
PXS_API int pxs_put_named(pxs_store *s, const char *name, const void *data,
			  size_t size, pxs_key *key_out);

/**
 * @brief The name that the value under @p key was stored with
 * (pxs_put_named()), or that its future was created under
 * (pxs_future_new_named()).
 * Only a name whose key is @p key is returned: bytes that are not one (a
 * value put without a name, a damaged segment) read as no name.
 * @param[in]  s   store from pxs_open()
 * @param[in]  key the key, not the all-zero one
 * @param[out] buf the name and a NUL; "" when there is none
 * @param[in]  len size of @p buf; #PXS_KEY_NAME_MAX + 1 always suffices
 * @return the name's length; 0 when the store keeps no name for the key (a
 *   value put or a future created without one, any key of a Redis store); or -EINVAL
 *   (NULL @p s or @p buf, zero key, @p len 0), -ENOENT (no such key),
 *   -ENOSPC (@p buf too small: it is set to ""), -EPROTO (the slot failed
 *   validation), -EUSERS (first call in a forked child: process table
 *   full), -ENOTRECOVERABLE.
 * @note Thread-safe; takes the key's slot lock for the copy and writes
 *   nothing to the segment.
 */
PXS_API int pxs_key_name(pxs_store *s, pxs_key key, char *buf, size_t len);

/**
 * @brief Pin the value under @p key and return a zero-copy view of it.
 * @param[in]  s   store from pxs_open()
 * @param[in]  key the key, not the all-zero one
 * @param[out] v   the view; written only on success
 * @return 0, or -EINVAL (NULL @p s or @p v, zero key), -ENOENT (no such key),
 *   -EAGAIN (a future not set yet), -EOWNERDEAD (an abandoned future),
 *   -EOVERFLOW (this handle already holds 65535 pins on the value),
 *   -ENOSPC (no room in the heap for this handle's pin records, which
 *   are allocated at its first pin), -EPROTO (the slot or its payload failed
 *   validation), -EUSERS (first call in a forked child: process table full),
 *   -EROFS (a #PXS_RDONLY handle; nothing changed), -ENOTRECOVERABLE.
 * @note Thread-safe. A value (set or put) is pinned without any lock: the
 *   pin is a count in this handle's own records, so readers of one value
 *   in many processes do not slow each other down. A future that is not
 *   set yet takes the slot's lock (never other slots'). The pin belongs to
 *   the calling process: a child after fork() that releases the view only
 *   forgets it.
 */
PXS_API int pxs_get(pxs_store *s, pxs_key key, pxs_view *v);

/**
 * @brief Unpin a view from pxs_get(), pxs_future_wait() or the like. Once
 * the last pin of an evicted value goes, its memory returns to the heap.
 * Takes no lock, unless the value was evicted (then the slot's, to free
 * it).
 * @param[in]     s the store the view came from
 * @param[in,out] v the view; cleared on success. NULL, or an already
 *   released (zeroed) view, is a no-op returning 0. A view pinned by an
 *   ancestor process before fork() is only forgotten (the pin is theirs).
 * @return 0, or -EINVAL (a view that this store did not pin: forged, from
 *   another store, or a copy of a view already released while no other
 *   view of this handle pins the same value; or NULL @p s with a view),
 *   -EPROTO (freeing an evicted value found the slot or heap invalid),
 *   -EUSERS (first call in a forked child: process table full),
 *   -ENOTRECOVERABLE.
 * @note Thread-safe, for different views; release each view once, from
 *   one thread. Pins are counted per handle and value, not per view:
 *   releasing a stale copy of a released view while the handle holds
 *   another view of the same value releases that other pin.
 */
PXS_API int pxs_release(pxs_store *s, pxs_view *v);

/**
 * @brief Is a value present under @p key?
 * @param[in] s   store from pxs_open()
 * @param[in] key the key, not the all-zero one
 * @return 1 when a value is present, 0 when not (absent, pending, reserved,
 *   abandoned or evicted), or -EINVAL (NULL @p s, zero key), -EUSERS
 *   (first call in a forked child: process table full), -ENOTRECOVERABLE.
 * @note Thread-safe; takes no lock and writes nothing, so the answer may
 *   be out of date as soon as it returns. Works on a #PXS_RDONLY handle.
 */
PXS_API int pxs_exists(pxs_store *s, pxs_key key);

/**
 * @brief Remove @p key for everyone, at once. Pinned views stay valid; the
 * memory is freed when the last one is released. Evicting a pending future
 * cancels it: its waiters return -ECANCELED.
 * @param[in] s   store from pxs_open()
 * @param[in] key the key, not the all-zero one
 * @return 0, or -EINVAL (NULL @p s, zero key), -ENOENT (absent), -EPROTO
 *   (the slot or heap failed validation), -EUSERS (first call in a forked
 *   child: process table full), -EROFS (a #PXS_RDONLY handle; nothing
 *   changed), -ENOTRECOVERABLE.
 * @note Thread-safe; any process may evict any key, whoever created it.
 */
PXS_API int pxs_evict(pxs_store *s, pxs_key key);

/**
 * @brief Give @p key a lifetime: @p ttl_ms milliseconds from now it is
 * evicted as if by pxs_evict(). From its deadline on it is absent to every
 * lookup (pxs_get(), pxs_exists(), the futures' calls, pxs_list()); views
 * pinned before stay valid; the waiters of a pending future return
 * -ECANCELED. No thread runs at the deadline: the memory comes back when
 * the next insertion meets the key, when a waiter of the future finds it
 * expired, or when pxs_reap() (or the library's own reap, before -ENOSPC)
 * runs. The deadline is on CLOCK_MONOTONIC, which all processes share.
 * @param[in] s      store from pxs_open()
 * @param[in] key    an object or a future (in any state but expired), not
 *                   the all-zero key
 * @param[in] ttl_ms milliseconds from now; 0 evicts at once; < 0 removes
 *                   the key's expiry. A later call replaces the deadline.
 * @return 0, or -EINVAL (NULL @p s, zero key), -ENOENT (absent or already
 *   expired), -EPROTO (the slot failed validation), -EUSERS (first call in a
 *   forked child: process table full), -EROFS (a #PXS_RDONLY handle; nothing
 *   changed), -ENOTRECOVERABLE.
 * @note Thread-safe; any process may give any key a lifetime; it takes the
 *   key's slot lock. On a Redis store the lifetime is Redis's own TTL
 *   (PEXPIRE of all the object's keys, on the server's clock): the server
 *   frees the keys at the deadline, and the waiters of a pending future
 *   return -ECANCELED at their next look, within 0.5 s of it. #pxs_entry.ttl_ms shows the time left. Safe after
 *   fork(), as every call on a handle.
 */
PXS_API int pxs_expire(pxs_store *s, pxs_key key, long ttl_ms);
/** @} */

/** @defgroup futures Futures
 *  @{ */

/**
 * @brief Create a pending future under a fresh random key, owned by the
 * calling handle.
 * @param[in]  s       store from pxs_open()
 * @param[out] key_out the new key; written only on success
 * @return 0, or -EINVAL (NULL @p s or @p key_out), -ENOSPC (slot table
 *   full: pxs_stat()'s @c slots_used is @c capacity), -EPROTO (the table
 *   failed validation), -EUSERS (first call in a forked child: process table
 *   full), -EROFS (a #PXS_RDONLY handle; nothing changed), -ENOTRECOVERABLE.
 * @note Thread-safe. The future is abandoned if the owning process exits
 *   or closes the handle before setting it, unless pxs_future_disown()
 *   gives it up. A future created in a child after fork() is the child's.
 */
PXS_API int pxs_future_new(pxs_store *s, pxs_key *key_out);

/**
 * @brief Create a pending future under @p key, owned by the calling
 * handle. A key that holds an abandoned future (its owner died before
 * setting it) is taken over, so a restarted producer can create its
 * futures again under the same names; the old future's waiters have been
 * told it was abandoned already. An expired key is absent and free to use.
 * @param[in] s   store from pxs_open()
 * @param[in] key the key, not the all-zero one
 * @return 0, or -EINVAL (NULL @p s, zero key), -EEXIST (the key holds an
 *   object or a future that is not abandoned), -ENOSPC (slot table full:
 *   pxs_stat()'s @c slots_used is @c capacity), -EPROTO (the table failed
 *   validation), -EUSERS (first call in a forked child: process table full),
 *   -EROFS (a #PXS_RDONLY handle; nothing changed), -ENOTRECOVERABLE.
 * @note Thread-safe: of two processes creating one key at once, one
 *   succeeds and the other gets -EEXIST. Ownership as for
 *   pxs_future_new(). It wakes the waiters of pxs_future_wait() that began
 *   waiting before the key existed: they go on to wait for its value.
 */
PXS_API int pxs_future_new_at(pxs_store *s, pxs_key key);

/**
 * @brief As pxs_future_new_at() under the key of @p name
 * (pxs_key_from_name(name, strlen(name))), keeping the name with the
 * future so that pxs_key_name() (and `proxyshm ls`, `ls --prefix`,
 * `evict --prefix`) can show and select it: pending, reserved, set,
 * abandoned, until the key is freed.
 * The name is kept in a small heap block of its own that the slot refers
 * to; whoever sets the future need not know it. The block is given to the
 * slot just after the insertion, so a concurrent pxs_key_name() may find
 * the future without its name for that moment. Taking over an abandoned
 * future keeps the name it had. On a Redis store the name is not kept (as
 * pxs_put_named()): the call is pxs_future_new_at() under its key.
 * @param[in]  s       store from pxs_open()
 * @param[in]  name    NUL-terminated, 1 to #PXS_KEY_NAME_MAX bytes
 * @param[out] key_out the key, written on success; may be NULL
 * @return 0, or -EINVAL (NULL @p s, NULL, empty or too long @p name),
 *   -EEXIST (the key holds an object or a future that is not abandoned;
 *   nothing changed), -ENOSPC (heap or slot table full; nothing changed),
 *   -EPROTO (the heap or table failed validation), -EUSERS (first call in
 *   a forked child: process table full), -EROFS (a #PXS_RDONLY handle;
 *   nothing changed), -ENOTRECOVERABLE; on a Redis store the errors of
 *   pxs_future_new_at() there.
 * @note Thread-safe, as pxs_future_new_at(); ownership as for
 *   pxs_future_new(). A process killed inside the call leaves at most a
 *   future whose owner is dead (abandoned when looked at) and a name block
 *   that its reaper frees. The name costs its length plus two bytes of
 *   heap, plus a block header.
 */
PXS_API int pxs_future_new_named(pxs_store *s, const char *name,
				 pxs_key *key_out);

/**
 * @brief Copy the value in, publish it and wake every waiter.
 * Any process may set a future; the value is visible whole or not at all.
 * @param[in] s    store from pxs_open()
 * @param[in] key  the future's key
 * @param[in] data bytes (may be NULL only when @p size is 0)
 * @param[in] size value size in bytes
 * @return 0, or -EINVAL (NULL @p s, zero key, NULL @p data with a non-zero
 *   @p size), -ENOENT (no such key), -EALREADY (already set, or a plain
 *   object: the value is unchanged), -EBUSY (reserved by
 *   pxs_future_reserve() and not committed), -EOWNERDEAD (abandoned),
 *   -ENOSPC (heap full; still pending), -EPROTO (the slot or heap failed
 *   validation), -EUSERS (first call in a forked child: process table
 *   full), -EROFS (a #PXS_RDONLY handle; nothing changed), -ENOTRECOVERABLE.
 * @note Thread-safe: of two setters, one succeeds and the other gets
 *   -EALREADY. Any process may set a future it does not own.
 */
PXS_API int pxs_future_set(pxs_store *s, pxs_key key, const void *data,
			   size_t size);

/**
 * @brief Reserve @p size bytes for the value of a pending future and make
 * the caller its owner. The producer writes into @p *buf, then calls
 * pxs_future_commit(). Waiters see nothing until the commit.
 * @param[in]  s    store from pxs_open()
 * @param[in]  key  the future's key
 * @param[in]  size value size in bytes (0 is valid)
 * @param[out] buf  writable memory inside the segment, valid until commit;
 *                  written only on success
 * @return 0, or -EINVAL (NULL @p s or @p buf, zero key), -ENOENT (no such
 *   key), -EALREADY (already set, or a plain object), -EBUSY (already
 *   reserved), -EOWNERDEAD (abandoned), -ENOSPC (heap full; still pending),
 *   -EPROTO (the slot or heap failed validation), -EUSERS (first call in a
 *   forked child: process table full), -EROFS (a #PXS_RDONLY handle; nothing
 *   changed), -ENOTRECOVERABLE.
 * @note Thread-safe. The reservation belongs to this handle: only it can
 *   commit, and if its process dies before the commit the future is
 *   abandoned and the memory returns to the heap. A child after fork() is
 *   another owner and cannot commit its parent's reservation.
 */
PXS_API int pxs_future_reserve(pxs_store *s, pxs_key key, size_t size,
			       void **buf);

/**
 * @brief Publish the reserved value and wake every waiter.
 * @param[in] s   store from pxs_open(): the handle that reserved
 * @param[in] key the future's key
 * @return 0, or -EINVAL (NULL @p s, zero key), -ENOENT (no such key, or
 *   evicted since the reservation: the reserved memory is freed), -EPERM
 *   (reserved by another process or handle), -EALREADY (already set, or a
 *   plain object), -EAGAIN (pending, not reserved), -EOWNERDEAD (abandoned),
 *   -EPROTO (the slot failed validation), -EUSERS (first call in a forked
 *   child: process table full), -EROFS (a #PXS_RDONLY handle; nothing
 *   changed), -ENOTRECOVERABLE.
 * @note Thread-safe; any thread of the reserving handle may commit.
 */
PXS_API int pxs_future_commit(pxs_store *s, pxs_key key);

/**
 * @brief Make the caller the owner of a pending future, so that its death
 * (not the creator's) abandons the future.
 * @param[in] s   store from pxs_open()
 * @param[in] key the future's key
 * @return 0 (also when this handle already owns it or holds its
 *   reservation), or -EINVAL (NULL @p s, zero key), -ENOENT (no such key),
 *   -EALREADY (already set, or a plain object), -EBUSY (reserved by
 *   another handle), -EOWNERDEAD (abandoned), -EPROTO (the slot failed
 *   validation), -EUSERS (first call in a forked child: process table
 *   full), -EROFS (a #PXS_RDONLY handle; nothing changed), -ENOTRECOVERABLE.
 * @note Thread-safe; the last claim wins. A child after fork() may claim
 *   its parent's future, and then owns it.
 */
PXS_API int pxs_future_claim(pxs_store *s, pxs_key key);

/**
 * @brief Stop owning a pending future, so that it outlives its creator.
 *
 * An ownerless future is never abandoned: it stays pending until some
 * process sets it, an evict cancels it, or (later) a process claims it with
 * pxs_future_claim() and so makes its own death reportable again. This is
 * ProxyStore's model, in which the client that creates a future hands it to a
 * producer and a consumer and may then exit. Disowning an ownerless future
 * does nothing and returns 0.
 * @param[in] s   store from pxs_open()
 * @param[in] key the future's key
 * @return 0, or -EINVAL (NULL store, zero key), -ENOENT (no such key),
 *   -EALREADY (already set, or a plain object), -EBUSY (reserved by
 *   pxs_future_reserve() and not committed: the reservation is its
 *   producer's), -EPERM (owned by another live process or handle),
 *   -EOWNERDEAD (abandoned: its owner died before this call), -EPROTO (the
 *   slot failed validation), -EUSERS (first call in a forked child: process
 *   table full), -EROFS (a #PXS_RDONLY handle; nothing changed),
 *   -ENOTRECOVERABLE.
 * @note Thread-safe. Any process may disown a future it owns; after fork()
 *   the child is a different owner from its parent, so a child cannot
 *   disown its parent's futures (-EPERM) unless it claims them first.
 */
PXS_API int pxs_future_disown(pxs_store *s, pxs_key key);

/**
 * @brief Wait until the future @p key is set, then pin its value.
 * Sleeps in the kernel on the slot's futex (CLOCK_MONOTONIC), waking every
 * 250 ms at most to check that the owner is alive. Plain objects are
 * returned at once. A key that does not exist yet is waited for too: the
 * call sleeps until some process creates it (pxs_future_new_at(),
 * pxs_put_at(), pxs_put()) and then waits for its value, all within
 * @p timeout_ms; so a consumer may start before its producer.
 * On a Redis store it blocks in the server (BLMOVE on the future's wake
 * list, or on the key's birth list while it does not exist), sending three
 * commands every 0.5 s to look at the state and the owner; the view is a
 * private copy. A server that goes away during the wait is reconnected to
 * every 0.2 s within the timeout, and the wait goes on on what the server
 * kept (a pending future that a restarted server lost is -ECANCELED; a key
 * not made yet is still waited for); if no server answers by the timeout
 * the wait returns the connection's error (-ECONNREFUSED, -ECONNRESET,
 * -ETIMEDOUT, ...) within the timeout plus the command timeout.
 * @param[in]  s          store from pxs_open()
 * @param[in]  key        the future's key (it need not exist yet)
 * @param[in]  timeout_ms <0 waits forever, 0 only checks (an absent key is
 *                        then -ENOENT)
 * @param[out] v          pinned view, valid until #pxs_release(); written
 *                        only on success
 * @return 0, or -EINVAL (NULL @p s or @p v, zero key), -ENOENT (no such key,
 *   with @p timeout_ms 0 only), -ETIMEDOUT (not created or not set in time;
 *   at once for 0 and a pending future), -ECANCELED (evicted, or expired,
 *   while waiting), -EOWNERDEAD (owner died before setting it), -EOVERFLOW
 *   (this handle already holds 65535 pins on the value), -ENOSPC (no room
 *   for this handle's pin records, as for pxs_get()), -EPROTO (the slot or
 *   its payload failed validation), -EUSERS (first call in a forked child:
 *   process table full), -EROFS (a #PXS_RDONLY handle; nothing changed),
 *   -ENOTRECOVERABLE.
 * @note Thread-safe: any number of threads and processes may wait on one
 *   future; one set wakes them all. Never returns -EINTR: a signal does
 *   not end the wait. A waiter holds no lock while it sleeps. It is counted
 *   in #pxs_stats.waiters and #pxs_entry.waiters while it sleeps; one
 *   killed in its sleep is taken off by the next reap (pxs_reap(), or any
 *   attach). A process's threads may sleep counted on up to 24 distinct
 *   futures at once; more poll every millisecond instead.
 */
PXS_API int pxs_future_wait(pxs_store *s, pxs_key key, long timeout_ms,
			    pxs_view *v);

/**
 * @brief As pxs_future_wait(), but first poll the future for up to
 * @p spin_us microseconds without sleeping.
 *
 * A sleeping waiter is woken by the kernel, which takes tens of
 * microseconds on some machines when the waiter's CPU is idle (a virtual
 * machine's vCPU must be woken by its host); a spinning one sees the set
 * within a microsecond or so, at the price of a busy CPU while it spins.
 * Spin only when the waiter has a CPU of its own: on the setter's CPU it
 * just delays the set. After the spin it sleeps as pxs_future_wait() does.
 * @param[in]  s          store from pxs_open()
 * @param[in]  key        the future's key
 * @param[in]  timeout_ms as for pxs_future_wait(); the spin counts in it
 * @param[in]  spin_us    microseconds to poll, at most #PXS_MAX_SPIN_US;
 *                        <0 uses the handle's #pxs_options.spin_us
 * @param[out] v          pinned view, valid until #pxs_release()
 * @return 0, or the errors of pxs_future_wait(): -EINVAL (also for @p
 *   spin_us above #PXS_MAX_SPIN_US), -ENOENT, -ETIMEDOUT, -ECANCELED,
 *   -EOWNERDEAD, -EOVERFLOW, -ENOSPC, -EPROTO, -EUSERS, -EROFS,
 *   -ENOTRECOVERABLE.
 * @note As pxs_future_wait(): thread-safe, not cut short by signals. The
 *   spin holds no lock.
 */
PXS_API int pxs_future_wait_spin(pxs_store *s, pxs_key key, long timeout_ms,
				 long spin_us, pxs_view *v);

/** Most futures one pxs_future_wait_any() call watches (Linux's
 *  futex_waitv limit). */
#define PXS_WAIT_ANY_MAX 128

/**
 * @brief Wait until the first of @p n futures is set, then pin its value.
 *
 * One kernel sleep on all their futex words at once (futex_waitv, Linux
 * 5.16 or later), no polling; like pxs_future_wait() it wakes every 250 ms
 * at most to check that the owners are alive. The futures are looked at in
 * order, so when several are ready the lowest index wins. A future that
 * cannot be waited on any more (abandoned, evicted, unknown) ends the call
 * with its error and its index, whether or not others are pending.
 * @param[in]  s          store from pxs_open()
 * @param[in]  keys       @p n keys of futures (or plain objects, which are
 *                        ready at once); a key may appear more than once
 * @param[in]  n          1..#PXS_WAIT_ANY_MAX
 * @param[in]  timeout_ms <0 waits forever, 0 only checks
 * @param[out] which      index in @p keys of the future that ended the
 *                        call; @p n on -ETIMEDOUT, -ENOSYS and errors
 *                        found on entry; untouched on -EINVAL
 * @param[out] v          pinned view of keys[*which], valid until
 *                        #pxs_release(); written only on success
 * @return 0, or -EINVAL (NULL @p s, @p keys, @p which or @p v, @p n 0 or
 *   above #PXS_WAIT_ANY_MAX, a zero key), -ETIMEDOUT (none set in time,
 *   including at once for 0), -ENOSYS (the kernel has no futex_waitv),
 *   -EUSERS (first call in a forked child: process table full), and for
 *   keys[*which]: -ENOENT (no such key), -ECANCELED (evicted while waiting),
 *   -EOWNERDEAD (owner died before setting it), -EOVERFLOW (this handle
 *   already holds 65535 pins on the value), -ENOSPC (no room for this handle's
 *   pin records, as for pxs_get()), -EPROTO (the slot or its payload failed
 *   validation), -EROFS (a #PXS_RDONLY handle; nothing changed),
 *   -ENOTRECOVERABLE.
 * @note Thread-safe: any number of threads and processes may wait on the
 *   same futures, alone or in wait-any sets; one set wakes them all. Never
 *   returns -EINTR: a signal does not end the wait. A waiter holds no lock
 *   while it sleeps. A forked child waits with its own process entry, as
 *   every call does. On a Redis store the sleep is one BLMPOP over the
 *   futures' wake lists, with the looks, liveness checks and reconnection
 *   of pxs_future_wait(); a key absent there is -ENOENT at once; the wake
 *   token it takes goes back inside the server in the same step, so a
 *   waiter killed while woken delays no other waiter.
 */
PXS_API int pxs_future_wait_any(pxs_store *s, const pxs_key *keys, size_t n,
				long timeout_ms, size_t *which, pxs_view *v);

/**
 * @brief Is the future set?
 * @param[in] s   store from pxs_open()
 * @param[in] key the future's key
 * @return 1 when set (or a plain object), 0 when pending or reserved, or
 *   -EINVAL (NULL @p s, zero key), -ENOENT (no such key), -EOWNERDEAD
 *   (abandoned; a future whose owner is found dead is abandoned by this
 *   call), -EPROTO (the slot failed validation), -EUSERS (first call in a
 *   forked child: process table full), -EROFS (a #PXS_RDONLY handle; nothing
 *   changed), -ENOTRECOVERABLE.
 * @note Thread-safe; takes the slot's lock for a moment, never waits for
 *   the future.
 */
PXS_API int pxs_future_done(pxs_store *s, pxs_key key);
/** @} */

/** @defgroup streams Streams
 *  A stream is a sequence of values under one key: items numbered 0, 1,
 *  2, ... in commit order, read in place through pinned views, with a
 *  window of retained items, readers whose progress can hold producers
 *  back (#PXS_STREAM_BLOCK), and named groups that hand each item to one
 *  member. Every call below also returns, as every call on a store does,
 *  -EUSERS (first call in a forked child: process table full) and
 *  -ENOTRECOVERABLE; on a #PXS_RDONLY handle (they pin the stream's
 *  metadata) every one of them returns -ENOTSUP. On a Redis store they
 *  keep their meaning (the "Redis" notes below say what differs) and
 *  return, besides, the connection's errors listed under "Redis stores";
 *  -EOVERFLOW and -EUSERS do not happen there. A key that holds anything but a stream (a
 *  plain value, a future), or a stream whose metadata another process
 *  scribbled over, is -EPROTO and nothing changes. Every call but
 *  pxs_stream_new() pins the stream's metadata for its duration: its
 *  handle's first pin can find the heap full (-ENOSPC, nothing changed),
 *  and one that holds 65535 pins on it gets -EOVERFLOW. A call that was
 *  under way (asleep, or about to lock the stream) when
 *  pxs_stream_delete() removed the stream returns -EIDRM; later calls
 *  get -ENOENT.
 *  @{ */

/** Flag of #pxs_stream_options: appends wait while the window is full up
 *  to the slowest joined live reader or group (backpressure). Without it
 *  the window slides and the oldest item is evicted (Discard). */
#define PXS_STREAM_BLOCK 1u
/** Largest #pxs_stream_options.window. */
#define PXS_STREAM_WINDOW_MAX 65536u
/** Readers (processes) that may be joined to one stream at a time. */
#define PXS_STREAM_READERS_MAX 64u
/** Groups one stream may have. */
#define PXS_STREAM_GROUPS_MAX 8u
/** Longest group name, in bytes, without its NUL. */
#define PXS_STREAM_GROUP_NAME_MAX 31u
/** Items one group may have taken and not acknowledged at a time; a take
 *  beyond it waits for an ack. */
#define PXS_STREAM_TAKEN_MAX 256u

/** How a stream behaves, for #pxs_stream_new(). */
typedef struct pxs_stream_options {
	/** Items retained, 1..#PXS_STREAM_WINDOW_MAX (NULL options: 16).
	 *  Older items are evicted; views pinned on them stay valid. */
	uint32_t window;
	/** 0 (Discard) or #PXS_STREAM_BLOCK. */
	unsigned flags;
} pxs_stream_options;

/** A snapshot of a stream, from #pxs_stream_stat(). */
typedef struct pxs_stream_stats {
	uint64_t first;   /**< oldest retained seq (== next when none) */
	uint64_t next;    /**< seq the next commit gets */
	int ended;        /**< 1 after pxs_stream_end() */
	uint32_t window;  /**< as created */
	unsigned flags;   /**< as created */
	uint32_t readers; /**< joined readers (dead ones not dropped yet
			       included) */
	uint32_t groups;  /**< groups that have taken from it */
	uint32_t taken;   /**< items taken and not acknowledged, all groups */
	/** Reservations not committed yet (on Redis: those of a
	 *  #PXS_STREAM_BLOCK stream only, the ones that hold it back). */
	uint32_t reserved;
	/** Lowest seq a joined reader or a group still needs (== next when
	 *  nothing holds the stream back). */
	uint64_t slowest;
	/** The calling process's reader position, UINT64_MAX if not joined. */
	uint64_t position;
} pxs_stream_stats;

/**
 * @brief Create an empty stream under @p key.
 * @param[in] s   store from pxs_open()
 * @param[in] key the stream's key, not the all-zero one
 * @param[in] o   window and flags, or NULL (window 16, Discard)
 * @return 0, or -EINVAL (NULL @p s, zero key, window 0 or above
 *   #PXS_STREAM_WINDOW_MAX, unknown flags), -EEXIST (the key is in use),
 *   -ENOSPC (slot table or heap full: the metadata takes about 40 KiB plus
 *   16 bytes per window item), -ECANCELED (another process evicted or set
 *   the key while it was being made), -ENOMEM (no lock could be made),
 *   -EPROTO (the table failed validation), -EUSERS, -ENOTRECOVERABLE,
 *   -ENOTSUP (a #PXS_RDONLY handle).
 * @note Thread-safe: of two processes creating one stream, one succeeds
 *   and the other gets -EEXIST. The stream belongs to nobody: it outlives
 *   its creator. pxs_stream_delete() removes it with its items;
 *   pxs_evict() of its key removes only the metadata (calls under way
 *   finish on the old one, and the retained items stay behind as values
 *   nobody can name: use pxs_stream_delete()). Redis: the stream is
 *   the keys "pxs:NAME:{K}" (a value for pxs_get() and pxs_list(): its
 *   metadata) and "pxs:NAME:{K}:x|r|q|g" (items, readers, reservations,
 *   wake list), under one hash tag; an evicted stream's other keys stay
 *   until a new stream of that key or pxs_unlink().
 */
PXS_API int pxs_stream_new(pxs_store *s, pxs_key key,
			   const pxs_stream_options *o);

/**
 * @brief Reserve @p size bytes for the next item; write it in place, then
 * pxs_stream_commit(). Readers see nothing until the commit.
 * @param[in]  s          store from pxs_open()
 * @param[in]  key        the stream
 * @param[in]  size       item size in bytes (0 is valid)
 * @param[in]  timeout_ms how long a #PXS_STREAM_BLOCK stream (or one with
 *                        64 reservations in flight) may make it wait:
 *                        <0 forever, 0 not at all
 * @param[out] buf        writable memory in the segment, valid until the
 *                        commit; written only on success
 * @return 0, or -EINVAL (NULL @p s or @p buf, zero key), -ENOENT (no such
 *   stream), -EBUSY (this thread has a reservation on this stream not
 *   committed yet), -EPIPE (the stream has ended), -ETIMEDOUT (the window
 *   stayed full), -ENOSPC (slot table or heap full), -ECANCELED (another
 *   process evicted the reservation at once), -EOVERFLOW (this handle
 *   holds 65535 pins on the stream's metadata), -EIDRM (the stream was
 *   deleted while this call waited or reserved), -EPROTO, -EUSERS,
 *   -ENOTRECOVERABLE, -ENOTSUP.
 * @note Thread-safe. A reservation belongs to the calling thread: each
 *   thread may hold one per stream. If the process dies before the
 *   commit, the reservation is freed and leaves no gap in the numbers.
 *   With #PXS_STREAM_BLOCK, reservations in flight count against the
 *   window, so two producers never overfill it. A thread blocked here
 *   wakes within 250 ms of the death of the reader that held it back;
 *   a signal does not end the wait. A forked child does not inherit its parent's
 *   reservations. Redis: the buffer is client memory, sent by the commit;
 *   a Block reservation is recorded in the server under the handle, and
 *   counts until the commit or until the handle is found dead (its owner
 *   connection gone) by a producer held back by it; a blocked producer
 *   sleeps in BLPOP on the stream's wake list and wakes within about
 *   0.5 s of the death of the reader or producer that held it back.
 */
PXS_API int pxs_stream_reserve(pxs_store *s, pxs_key key, size_t size,
			       long timeout_ms, void **buf);

/**
 * @brief Publish the calling thread's reservation as the stream's next
 * item and wake its readers.
 * @param[in]  s       store from pxs_open()
 * @param[in]  key     the stream
 * @param[out] seq_out the item's sequence number (may be NULL); written
 *                     only on success
 * @return 0, or -EINVAL (NULL @p s, zero key, no reservation of this
 *   thread on this stream), -ENOENT (no such stream), -EPIPE (the stream
 *   ended meanwhile: the reservation is dropped), -ECANCELED (another
 *   process evicted the reservation: nothing is appended), -EOVERFLOW,
 *   -ENOSPC (no room for this handle's pin records), -EIDRM (the stream
 *   was deleted meanwhile: nothing is appended), -EPROTO, -EUSERS,
 *   -ENOTRECOVERABLE, -ENOTSUP. A stream deleted between the reservation
 *   and the commit is -ENOENT (or -EIDRM): the reservation was evicted
 *   with it, and its memory comes back when this handle closes.
 * @note Thread-safe; never waits for readers. Sequence numbers follow the
 *   order of the commits. In a Discard stream with a full window it evicts
 *   the oldest item. Redis: one script (XADD with MAXLEN = window, under
 *   the ID "SEQ-1"); -ECANCELED when the handle was found dead meanwhile
 *   and its Block reservation dropped; after a connection error the
 *   reservation is kept and the commit may be retried.
 */
PXS_API int pxs_stream_commit(pxs_store *s, pxs_key key, uint64_t *seq_out);

/**
 * @brief Append a copy of @p size bytes as the next item:
 * pxs_stream_reserve(), a copy, pxs_stream_commit().
 * @param[in]  s          store from pxs_open()
 * @param[in]  key        the stream
 * @param[in]  data       the bytes (NULL only when @p size is 0)
 * @param[in]  size       item size in bytes
 * @param[in]  timeout_ms as for pxs_stream_reserve()
 * @param[out] seq_out    the item's sequence number (may be NULL)
 * @return 0, or the errors of pxs_stream_reserve() and pxs_stream_commit():
 *   -EINVAL (NULL @p s, zero key, NULL @p data with a non-zero @p size),
 *   -ENOENT, -EBUSY (this thread holds a reservation on this stream),
 *   -EPIPE, -ETIMEDOUT, -ENOSPC, -ECANCELED, -EOVERFLOW, -EIDRM, -EPROTO,
 *   -EUSERS, -ENOTRECOVERABLE, -ENOTSUP.
 * @note Thread-safe, as pxs_stream_reserve().
 */
PXS_API int pxs_stream_append(pxs_store *s, pxs_key key, const void *data,
			      size_t size, long timeout_ms, uint64_t *seq_out);

/**
 * @brief Pin item @p seq, waiting until it is appended.
 * When @p seq is a joined reader's position (pxs_stream_join(): the lowest
 * seq it has not read, items slid out counting as read), the position
 * moves past it.
 * @param[in]  s          store from pxs_open()
 * @param[in]  key        the stream
 * @param[in]  seq        the item's sequence number
 * @param[in]  timeout_ms <0 waits forever, 0 only checks
 * @param[out] v          pinned view of the item, valid until
 *                        pxs_release() even after it slides out of the
 *                        window; written only on success
 * @return 0, or -EINVAL (NULL @p s or @p v, zero key), -ENOENT (no such
 *   stream), -ERANGE (the item slid out of the window, or was evicted:
 *   pxs_stream_stat()'s first is the oldest still there), -EPIPE (the
 *   stream has ended and @p seq is past its last item), -ETIMEDOUT,
 *   -EOVERFLOW (this handle already holds 65535 pins on the item or the
 *   metadata), -ENOSPC (no room for this handle's pin records), -EIDRM
 *   (the stream was deleted while this call waited), -EPROTO, -EUSERS,
 *   -ENOTRECOVERABLE, -ENOTSUP.
 * @note Thread-safe; any number of threads and processes may read one
 *   item. A waiting reader sleeps in the kernel and holds no lock; a
 *   signal does not end the wait. Redis: one script reads a retained item
 *   (and moves the position); a waiting reader blocks in XREAD BLOCK, woken
 *   by the XADD of the item or of the end, and looks again every 0.5 s.
 */
PXS_API int pxs_stream_read(pxs_store *s, pxs_key key, uint64_t seq,
			    long timeout_ms, pxs_view *v);

/**
 * @brief End the stream: no more appends (-EPIPE); readers and takers
 * that reach the end get -EPIPE.
 * @param[in] s   store from pxs_open()
 * @param[in] key the stream
 * @return 0, or -EINVAL (NULL @p s, zero key), -ENOENT (no such stream),
 *   -EALREADY (already ended), -EOVERFLOW, -ENOSPC (no room for this
 *   handle's pin records), -EIDRM, -EPROTO, -EUSERS, -ENOTRECOVERABLE,
 *   -ENOTSUP.
 * @note Thread-safe; any process may end a stream. Retained items stay
 *   readable.
 */
PXS_API int pxs_stream_end(pxs_store *s, pxs_key key);

/**
 * @brief Delete the stream: evict its key, its retained items and its
 * reservations in flight, and wake every call asleep on it.
 * @param[in] s   store from pxs_open()
 * @param[in] key the stream
 * @return 0, or -EINVAL (NULL @p s, zero key), -ENOENT (no such stream),
 *   -EOVERFLOW, -ENOSPC (no room for this handle's pin records), -EIDRM
 *   (another call deleted it at the same moment), -EPROTO (not a stream,
 *   or its metadata failed validation: nothing changed), -EUSERS,
 *   -ENOTRECOVERABLE, -ENOTSUP (a #PXS_RDONLY handle, or a Redis
 *   store: remove a Redis stream with pxs_unlink() of its store).
 * @note Thread-safe; any process may delete a stream, ended or not, and
 *   the call never waits for readers or producers. Calls asleep on the
 *   stream (readers, takers, blocked producers) wake and return -EIDRM;
 *   later calls get -ENOENT, and the key may be used again at once.
 *   Views pinned on items stay valid until released (pxs_evict()'s
 *   promise). A reservation in flight is evicted: its producer's
 *   pxs_stream_commit() fails and the memory comes back when that handle
 *   closes or its process dies. If the deleting process dies half way,
 *   the next call that locks the stream finishes the delete, so nothing is
 *   left behind.
 */
PXS_API int pxs_stream_delete(pxs_store *s, pxs_key key);

/**
 * @brief Fill @p st with the stream's numbers.
 * @param[in]  s   store from pxs_open()
 * @param[in]  key the stream
 * @param[out] st  the snapshot; written only on success
 * @return 0, or -EINVAL (NULL @p s or @p st, zero key), -ENOENT (no such
 *   stream), -EOVERFLOW, -ENOSPC (no room for this handle's pin records),
 *   -EIDRM, -EPROTO, -EUSERS, -ENOTRECOVERABLE, -ENOTSUP.
 * @note Thread-safe; an atomic snapshot (taken under the stream's lock).
 *   Redis: one script, atomic too; readers and reserved count handles not
 *   found dead yet (nobody asks in stat); taken is the groups' pending
 *   entries; groups counts the groups made.
 */
PXS_API int pxs_stream_stat(pxs_store *s, pxs_key key, pxs_stream_stats *st);

/**
 * @brief Make the calling process a reader at position @p from_seq (the
 * lowest seq it has not read). Its successful reads advance the position;
 * on a #PXS_STREAM_BLOCK stream it holds producers back.
 * @param[in] s        store from pxs_open()
 * @param[in] key      the stream
 * @param[in] from_seq first item to read, at least pxs_stream_stat()'s
 *                     first (its next: only new items)
 * @return 0, or -EINVAL (NULL @p s, zero key), -ENOENT (no such stream),
 *   -ERANGE (@p from_seq below the oldest retained item), -EALREADY (this
 *   process is joined already), -ENOSPC (#PXS_STREAM_READERS_MAX readers
 *   are joined, or no room for pin records), -EOVERFLOW, -EIDRM, -EPROTO,
 *   -EUSERS, -ENOTRECOVERABLE, -ENOTSUP.
 * @note Thread-safe. The reader is the process (its handle's entry): its
 *   threads share one position. When it dies its position is dropped by
 *   the next caller that is held back by it, within 250 ms for a blocked
 *   producer; a stopped process stays a reader. A forked child is not
 *   joined. Redis: the reader is the handle (its owner connection), not
 *   the process: two handles of one process are two readers; a dead one
 *   is dropped by a producer it holds back, within about 0.5 s.
 */
PXS_API int pxs_stream_join(pxs_store *s, pxs_key key, uint64_t from_seq);

/**
 * @brief Stop being a reader of the stream.
 * @param[in] s   store from pxs_open()
 * @param[in] key the stream
 * @return 0, or -EINVAL (NULL @p s, zero key), -ENOENT (no such stream, or
 *   this process is not joined), -EOVERFLOW, -ENOSPC (no room for pin
 *   records), -EIDRM, -EPROTO, -EUSERS, -ENOTRECOVERABLE, -ENOTSUP.
 * @note Thread-safe; wakes producers it held back.
 */
PXS_API int pxs_stream_leave(pxs_store *s, pxs_key key);

/**
 * @brief Take the next item for group @p group: each item goes to one
 * member (a process calling this) at a time, and comes back to the group
 * when its taker dies before pxs_stream_ack() (at-least-once delivery).
 * Items taken back from dead members go out first. The group is made by
 * its first take and starts at the oldest retained item.
 * @param[in]  s          store from pxs_open()
 * @param[in]  key        the stream
 * @param[in]  group      1..#PXS_STREAM_GROUP_NAME_MAX bytes, NUL-terminated
 * @param[in]  timeout_ms <0 waits forever, 0 only checks
 * @param[out] seq        the item's sequence number; written only on
 *                        success
 * @param[out] v          pinned view of it, valid until pxs_release();
 *                        written only on success
 * @return 0, or -EINVAL (NULL @p s, @p group, @p seq or @p v, zero key, a
 *   group name empty or too long), -ENOENT (no such stream), -ENOSPC
 *   (#PXS_STREAM_GROUPS_MAX groups exist already, or no room for pin
 *   records), -EPIPE (the stream has ended and every item the group got
 *   is acknowledged), -ETIMEDOUT, -EOVERFLOW, -EIDRM (the stream was
 *   deleted while this call waited), -EPROTO, -EUSERS, -ENOTRECOVERABLE,
 *   -ENOTSUP.
 * @note Thread-safe. While items taken by live members are not
 *   acknowledged, a take at the end waits (one of them may come back);
 *   items of live members are never handed out again. A group holds a
 *   #PXS_STREAM_BLOCK producer back like a reader at its oldest item not
 *   acknowledged. On a Discard stream, items that slid out before being
 *   taken are skipped. A forked child is a member of its own. Redis: a
 *   group is a Redis consumer group, a member a handle (consumer named by
 *   its owner connection's CLIENT ID), a take XREADGROUP (blocking in the
 *   server); the members holding items are asked after at most every
 *   0.5 s per process, and a dead one's items are claimed (XCLAIM) one at
 *   a time by the taker that finds it dead, before new items;
 *   #PXS_STREAM_TAKEN_MAX is not enforced.
 */
PXS_API int pxs_stream_take(pxs_store *s, pxs_key key, const char *group,
			    long timeout_ms, uint64_t *seq, pxs_view *v);

/**
 * @brief Acknowledge item @p seq of group @p group: it is done and will not
 * be handed out again.
 * @param[in] s     store from pxs_open()
 * @param[in] key   the stream
 * @param[in] group the group's name
 * @param[in] seq   the item, as pxs_stream_take() returned it
 * @return 0, or -EINVAL (NULL @p s or @p group, zero key, a group name
 *   empty or too long), -ENOENT (no such stream or group, or @p seq is
 *   not taken and unacknowledged in it), -EOVERFLOW, -ENOSPC (no room for
 *   pin records), -EIDRM, -EPROTO, -EUSERS, -ENOTRECOVERABLE, -ENOTSUP.
 * @note Thread-safe; any process may acknowledge. The caller's view of the
 *   item stays valid until it releases it.
 */
PXS_API int pxs_stream_ack(pxs_store *s, pxs_key key, const char *group,
			   uint64_t seq);
/** @} */

/** @defgroup stats Statistics
 *  @{ */

/** A snapshot of a store, from #pxs_stat(). */
typedef struct pxs_stats {
	/** Bytes mapped. */
	uint64_t segment_size;
	/** Bytes managed by the payload heap. */
	uint64_t heap_size;
	/** Bytes in allocated blocks, headers included. */
	uint64_t heap_used;
	/** Bytes in free blocks. */
	uint64_t heap_free;
	/** Largest single allocation possible now. */
	uint64_t heap_largest_free;
	/** Live objects and futures the slot table takes now: the fixed
	 *  #pxs_options.capacity, or, for a table that grows (capacity 0),
	 *  what its older tables hold plus what its newest takes before the
	 *  next table must be added. */
	uint32_t capacity;
	/** Slots taken: objects, futures, evicted values still pinned and
	 *  expired keys not reclaimed yet, against @c capacity. A put or a
	 *  new future refused with -ENOSPC while this equals @c capacity met
	 *  a full slot table (fixed, or one whose next table did not fit in
	 *  the heap); below it, a full heap. 0 for a Redis store. */
	uint32_t slots_used;
	/** Tables in the slot table's chain (1 for a fixed capacity). */
	uint32_t tables;
	/** Nonzero if the slot table may still add a table (capacity 0 and
	 *  fewer than the most tables a chain has); whether the heap has
	 *  room for it is @c heap_largest_free's to say. */
	uint32_t table_grows;
	uint32_t objects;        /**< values present (set futures included) */
	uint32_t pending;        /**< futures pending or reserved */
	uint32_t abandoned;      /**< futures whose owner died */
	uint32_t evicted_pinned; /**< evicted values kept alive by pins */
	uint32_t pins;           /**< pinned views, all processes */
	/** Threads asleep in a wait (also on keys not created yet); one
	 *  killed asleep counts until the next reap. */
	uint32_t waiters;
	uint32_t processes;      /**< attached processes alive */
	uint64_t puts;           /**< objects stored and futures set */
	uint64_t gets;           /**< views pinned */
	uint64_t evictions;      /**< successful evicts */
	uint64_t waits;          /**< calls to pxs_future_wait, _spin, _any */
	uint64_t timeouts;       /**< waits that returned -ETIMEDOUT */
	uint64_t recoveries;     /**< locks repaired after an owner died */
} pxs_stats;

/**
 * @brief Fill @p st with the store's current sizes and counters.
 * Tests and tools use it to prove that a failed call changed nothing.
 * @param[in]  s  store from pxs_open()
 * @param[out] st the snapshot; written only on success
 * @return 0, or -EINVAL (NULL @p s or @p st), -EUSERS (first call in a
 *   forked child: process table full), -ENOTRECOVERABLE (poisoned, or the
 *   heap lock could not be repaired).
 * @note Thread-safe. Takes the heap lock for a moment, waiting for it at
 *   most a second (if a stopped process holds it, or its word is garbage,
 *   the heap's figures are read without it); the slot counts are read
 *   without locks, so under concurrent use they are a snapshot, not an
 *   atomic one. Counters are summed over every attached process. On a
 *   #PXS_RDONLY handle it takes no lock at all and writes nothing; such a
 *   handle is not an attached process, so it is not counted in
 *   #pxs_stats.processes and has no pin records in #pxs_stats.heap_used.
 */
PXS_API int pxs_stat(pxs_store *s, pxs_stats *st);
/** @} */

/** @defgroup inspect Inspection
 *  Read-only views of a segment for tools (the proxyshm command) and tests.
 *  @{ */

/** What a slot holds, from #pxs_list(). */
typedef enum pxs_state {
	/** A value: an object, or a future that was set. */
	PXS_STATE_VALUE = 1,
	/** A future not set yet. */
	PXS_STATE_PENDING = 2,
	/** A future whose producer is writing its value. */
	PXS_STATE_RESERVED = 3,
	/** A future whose owner died before setting it. */
	PXS_STATE_ABANDONED = 4,
	/** Evicted, kept alive by pins or its producer. */
	PXS_STATE_EVICTED = 5
} pxs_state;

/** One object or future, from #pxs_list(). */
typedef struct pxs_entry {
	pxs_key key;         /**< its key */
	pxs_state state;     /**< what it holds */
	uint64_t size;       /**< value bytes (reserved bytes for RESERVED) */
	uint32_t pins;       /**< pinned views */
	uint32_t waiters;    /**< threads asleep waiting on it (one killed
                                asleep counts until the next reap) */
	int32_t owner_pid;   /**< pid of the owning process (futures), else 0 */
	int owner_alive;     /**< 1 if that owner is attached and alive */
	uint64_t created_ns; /**< creation time, ns since the Epoch */
	int64_t ttl_ms;      /**< milliseconds until it expires (pxs_expire()),
                                rounded up; -1 when it has no expiry */
} pxs_entry;

/**
 * @brief Iterate over the objects and futures of a store.
 * Start with *@p cursor = 0 and call until it returns 0. The iteration takes
 * no lock: it sees each slot as it was when visited, and entries inserted or
 * evicted meanwhile may or may not appear.
 * @param[in]     s      store from pxs_open()
 * @param[in,out] cursor position; advanced on each call
 * @param[out]    e      the next entry; written only when 1 is returned
 * @return 1 (an entry), 0 (no more), or -EINVAL (NULL @p s, @p cursor or
 *   @p e), -EUSERS (first call in a forked child: process table full),
 *   -ENOTRECOVERABLE.
 * @note Thread-safe; a cursor belongs to one caller. Takes no lock and
 *   writes nothing to the segment; a slot whose state word is invalid is
 *   skipped. Works on a #PXS_RDONLY handle.
 */
PXS_API int pxs_list(pxs_store *s, uint64_t *cursor, pxs_entry *e);

/** One attached process, from #pxs_proc_list(). */
typedef struct pxs_proc_info {
	uint32_t id;        /**< its entry in the segment's process table */
	int32_t pid;        /**< its pid, as it saw itself when it attached */
	int alive;          /**< 1 alive (stopped counts as alive), 0 dead */
	uint64_t attach_ns; /**< attach time, ns since the Epoch */
} pxs_proc_info;

/**
 * @brief Iterate over the processes attached to a store (one entry per
 * handle), including dead ones whose entries were not reclaimed yet.
 * Use like #pxs_list().
 * @param[in]     s      store from pxs_open()
 * @param[in,out] cursor position; start at 0, advanced on each call
 * @param[out]    p      the next process; written only when 1 is returned
 * @return 1 (an entry), 0 (no more), or -EINVAL (NULL @p s, @p cursor or
 *   @p p), -EUSERS (first call in a forked child: process table full),
 *   -ENOTRECOVERABLE.
 * @note Thread-safe; takes no lock and writes nothing to the segment. The
 *   caller's own handle is listed too, unless it is #PXS_RDONLY (which
 *   takes no entry). Works on a #PXS_RDONLY handle.
 */
PXS_API int pxs_proc_list(pxs_store *s, uint64_t *cursor, pxs_proc_info *p);

/** What #pxs_check() found. */
typedef struct pxs_check_report {
	uint32_t errors;       /**< inconsistencies found; 0 = consistent */
	char first_error[128]; /**< the first of them, in words ("" if none) */
	uint64_t heap_size;    /**< bytes managed by the heap */
	uint64_t bytes_free;   /**< in free blocks */
	uint64_t bytes_used;   /**< in allocated blocks, headers included */
	uint64_t bytes_overhead; /**< block headers of allocated blocks */
	uint64_t largest_free;   /**< largest allocation possible now */
	uint64_t blocks_used;    /**< allocated blocks */
	uint64_t blocks_free;    /**< free blocks */
	uint32_t slots_live;     /**< slots holding an object or future */
	uint32_t pins;      /**< pins on live slots, from the pin records */
	uint32_t dead_pins; /**< pins held by processes that died */
	uint32_t processes; /**< attached processes alive */
	/** Entries of dead processes not yet reaped. */
	uint32_t dead_processes;
	/** Blocks of dead processes that nothing references. */
	uint32_t leaked_blocks;
	/** Threads asleep in waits, from the processes' wait records (absent
	 *  keys included). */
	uint32_t waiters;
	/** Of which registered by processes that died (pxs_reap() takes them
	 *  off). */
	uint32_t dead_waiters;
	/** Locks the check could not take within its second (held by a
	 *  stopped process, or a lock word that is garbage): what they guard
	 *  was read without them, as a snapshot. On a #PXS_RDONLY handle,
	 *  which takes no lock, 0, or 1 when every check it made overlapped a
	 *  change of the heap ("heap (changing)"): no verdict. */
	uint32_t locks_busy;
	/** The first of them ("heap", "table", "slot 17", "doorbell 3",
	 *  "heap (changing)"), "" if none. */
	char busy_lock[32];
} pxs_check_report;

/**
 * @brief Validate the whole segment without changing it: every slot's state
 * and payload, every heap block (no overlap, all inside the heap, free +
 * used == heap size), the free lists, pin counts against the per-process
 * pin records. Usable from a fresh process. Resources of dead processes are
 * counted (dead_pins, leaked_blocks) but are not errors: #pxs_reap()
 * reclaims them.
 * @param[in]  s store from pxs_open()
 * @param[out] r the findings (required)
 * @return 0 when consistent, -EPROTO when not (see @p r), or -EINVAL (NULL
 *   @p s or @p r), -ENOMEM (no memory for the walk), -EUSERS (first call
 *   in a forked child: process table full), -ENOTRECOVERABLE.
 * @note Thread-safe. Takes the heap lock for the heap walk, then the table
 *   lock and holds new insertions back for the slot scan (each slot under
 *   its own lock in turn), so the verdict is exact even while other
 *   processes work. It waits at most a second in all for these locks;
 *   after that it only tries them. A lock it does not get (a stopped
 *   process holds it, or its word is garbage) is counted in
 *   #pxs_check_report.locks_busy and named in busy_lock, and what it
 *   guards is read without it; if a stopped process is inside an
 *   insertion the live count is a snapshot, not compared with the
 *   capacity. So it returns within about two seconds whatever other
 *   processes do.
 *   On a #PXS_RDONLY handle it takes no lock and repairs nothing: the heap,
 *   the slots, the pin and wait records and the doorbells are read as a
 *   snapshot. A slot is judged only if it did not change while it was
 *   read, a heap walk that finds an error is repeated until two walks in
 *   a row find the same one (five at most), and the comparisons that need
 *   a lock to be exact are not made: waiter counts against the wait
 *   records, and the live count against the capacity. Traffic can still
 *   change the heap under a walk, so an inconsistency is reported (-EPROTO)
 *   only by a whole check that no heap change overlapped (the heap's
 *   change counter, bumped before and after every change, was the same
 *   even value before and after it); a check that found one while the
 *   heap changed is run again, for about a second. If every try
 *   overlapped a change the call returns 0 with locks_busy 1 and
 *   busy_lock "heap (changing)": rerun it when the store is quieter.
 */
PXS_API int pxs_check(pxs_store *s, pxs_check_report *r);

/**
 * @brief Reclaim what dead processes left behind: drop their pins, free
 * their reservations and the blocks they allocated but never published,
 * abandon the futures they owned, and free their process entries. The
 * library also does this by itself when a process attaches and before an
 * allocation would fail with -ENOSPC.
 * It also takes off the waiter counts of dead processes' waiters, and
 * evicts every key whose expiry (pxs_expire()) has passed.
 * @param[in] s store from pxs_open()
 * @return the number of dead processes reaped (>= 0), or -EINVAL (NULL
 *   @p s), -ETIMEDOUT (the process table's lock was not had within a
 *   second: a process stopped while holding it, or a garbage lock word;
 *   nothing reaped), -EUSERS (first call in a forked child: process table
 *   full), -EROFS (a #PXS_RDONLY handle; nothing changed),
 *   -ENOTRECOVERABLE.
 * @note Thread-safe; any process may reap for all. A process stopped by a
 *   signal is alive and is not reaped. Bounded as pxs_open() is: it waits
 *   about a second in all for the locks it takes; what a lock not had in
 *   time guards (a stopped process holds it) is left to the next reaper.
 *   The reap that a full heap or table triggers before -ENOSPC is bounded
 *   the same way.
 */
PXS_API int pxs_reap(pxs_store *s);
/** @} */

/** @defgroup proxies Proxies
 *  @{ */

/** Opaque lazy reference to a value in a named store. */
typedef struct pxs_proxy pxs_proxy;

/** Longest proxy string: "pxs://" + name, or a Redis store name, then
 *  "/" + 32 hex digits + NUL. */
#define PXS_PROXY_STRLEN (PXS_STORE_NAME_MAX + 1 + 32 + 1)

/**
 * @brief Make a proxy for @p key in the store named @p store_name.
 * Nothing is attached until pxs_proxy_resolve().
 * @param[in]  store_name a segment name, as for pxs_open()
 * @param[in]  key        the key, not the all-zero one
 * @param[out] out        the proxy, freed with pxs_proxy_free(); set to
 *                        NULL on failure
 * @return 0, or -EINVAL (NULL or bad @p store_name, zero key, NULL
 *   @p out), -ENOMEM.
 * @note Thread-safe; touches no segment. A proxy is a value to hand to
 *   other processes as a string (pxs_proxy_format()).
 */
PXS_API int pxs_proxy_new(const char *store_name, pxs_key key, pxs_proxy **out);

/**
 * @brief Write `pxs://<name without its leading '/'>/<32 hex key>`.
 * @param[in]  p   the proxy
 * @param[out] buf at least @p len bytes; #PXS_PROXY_STRLEN always suffices
 * @param[in]  len size of @p buf in bytes
 * @return the string length (without the NUL), or -EINVAL (NULL @p p or
 *   @p buf), -ENOSPC (@p len too small: @p buf is set to "" if @p len > 0).
 * @note Thread-safe, also on one proxy from many threads.
 */
PXS_API int pxs_proxy_format(const pxs_proxy *p, char *buf, size_t len);

/**
 * @brief Parse a proxy string strictly (exactly the form that
 * pxs_proxy_format() writes).
 * @param[in]  str the string, NUL-terminated
 * @param[out] out the proxy, freed with pxs_proxy_free(); set to NULL on
 *                 failure
 * @return 0, or -EINVAL (NULL @p str or @p out, or a string of any other
 *   form), -ENOMEM.
 * @note Thread-safe; touches no segment (the store need not exist yet).
 */
PXS_API int pxs_proxy_parse(const char *str, pxs_proxy **out);

/**
 * @brief The key a proxy refers to.
 * @param[in] p the proxy, or NULL
 * @return its key; the all-zero key for NULL; never an error.
 * @note Thread-safe; the key never changes.
 */
PXS_API pxs_key pxs_proxy_key(const pxs_proxy *p);

/**
 * @brief Resolve: the first call attaches the store (one attachment per
 * process per name, shared by every proxy and thread) and waits for the
 * value as pxs_future_wait() does (also for a key not created yet, when
 * @p timeout_ms is not 0); later calls return the same bytes at once
 * without a lock.
 * @param[in]  p          the proxy
 * @param[in]  timeout_ms as for pxs_future_wait(), for the first call
 * @param[out] data       the value, pinned until pxs_proxy_free(); written
 *                        only on success
 * @param[out] size       its size in bytes; written only on success
 * @return 0, or -EINVAL (NULL @p p, @p data or @p size), -ENOMEM, any
 *   error of pxs_open() without #PXS_CREATE (-ENOENT when the store does
 *   not exist, -EPROTO, -EPERM, -EACCES, ...), or of pxs_future_wait()
 *   (-ENOENT, -ETIMEDOUT, -ECANCELED, -EOWNERDEAD, ...). A failed call may
 *   be retried.
 * @note Thread-safe, also on one proxy from many threads. The process's
 *   attachment to the store lives until the last proxy of it is freed; in
 *   a child after fork() the first resolve registers the child, as any
 *   first call on a handle does.
 */
PXS_API int pxs_proxy_resolve(pxs_proxy *p, long timeout_ms, const void **data,
			      size_t *size);

/**
 * @brief Release the proxy's pin and free it.
 * @param[in] p the proxy, or NULL (a no-op); not to be used again
 * @note No other thread may use @p p during or after the call; other
 *   proxies of the same store are unaffected.
 */
PXS_API void pxs_proxy_free(pxs_proxy *p);
/** @} */

#ifdef __cplusplus
}
#endif
#endif /* PROXYSHM_H */
