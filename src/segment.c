/* segment.c - creating, validating and mapping a segment.
 *
 * Owns: shm_open, the creation protocol, posix_fallocate, mmap/munmap, the
 * header's validation and the geometry. It must not touch slots or the
 * heap beyond formatting them at creation.
 *
 * HOW CREATION IS RACE-FREE. A creator never initialises the segment under
 * its public name. It creates a private object "/.pxs-tmp-<name>-<pid>-<n>"
 * with O_EXCL, sizes it (posix_fallocate: a full /dev/shm is -ENOSPC now,
 * not SIGBUS later), sets the exact mode with fchmod, formats everything,
 * writes the magic last, and then publishes it with one
 * renameat2(RENAME_NOREPLACE) onto /dev/shm/<name>. So:
 *  - an attacher sees either no segment or a complete one, never a
 *    half-initialised one, and never has to wait for a creator;
 *  - of two concurrent creators exactly one rename wins; the loser deletes
 *    its private copy and attaches the winner's (or reports -EEXIST under
 *    PXS_EXCL);
 *  - a creator killed mid-way leaves only a private object that no one
 *    opens (pxs_unlink and the CLI can remove such leftovers).
 * This relies on shm_open's objects being files in /dev/shm, as they are on
 * Linux with glibc (and musl).
 *
 * ATTACH trusts nothing: it fstat()s first (a regular file, one link, our
 * uid or the one the caller trusts, large enough), maps exactly st_size,
 * checks magic, version and fingerprint, and recomputes the geometry from
 * (size, capacity) and demands that the header agrees with it.
 *
 * READ-ONLY. A PXS_RDONLY handle opens the object O_RDONLY and maps it
 * PROT_READ: it cannot write a byte, so it cannot back the metadata with
 * posix_fallocate either. It demands instead that the file holds at least
 * its metadata's worth of memory (st_blocks), which a genuine segment
 * does from its creation, so that reading the metadata through the mapping
 * finds no hole to fault in on a full /dev/shm.
 */
#include "internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHM_DIR "/dev/shm/"

static uint64_t
round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

int
pxs__geometry(uint64_t size, uint32_t capacity, struct pxs_geom *g)
{
	if (size < PXS_MIN_SIZE || size > ((uint64_t)1 << 46) ||
	    size % PXS_PAGE)
		return -EINVAL;
	if (capacity > PXS_MAX_CAPACITY)
		return -EINVAL;
	/* Capacity 0: a small table 0 that grows in the heap (chain.c). */
	uint32_t n = capacity ? 2 : PXS_TABLE0_SLOTS;
	while (n < 2 * (uint64_t)capacity)
		n <<= 1;
	g->size = size;
	g->capacity = capacity;
	g->nslots = n;
	g->procs_off = round_up(sizeof(struct pxs_seg_hdr), PXS_PAGE);
	g->table_off =
		round_up(g->procs_off + (uint64_t)PXS_MAX_PROCS *
						sizeof(struct pxs_seg_proc),
			 PXS_PAGE);
	g->heap_off = round_up(
		g->table_off + (uint64_t)n * sizeof(struct pxs_seg_slot),
		PXS_PAGE);
	g->heap_end = size;
	/* The heap must be able to hold at least a few pages. */
	if (g->heap_off + 16 * PXS_PAGE > size)
		return -EINVAL;
	return 0;
}

/* Back [0, len) of fd with memory (posix_fallocate), as a negative errno:
 * a full /dev/shm, or a file size past its limit (EFBIG), is -ENOSPC. */
static int
back(int fd, uint64_t len)
{
	int rc = posix_fallocate(fd, 0, (off_t)len);
	return rc == 0 ? 0 : rc == ENOSPC || rc == EFBIG ? -ENOSPC : -rc;
}

static int commit(void *store, uint64_t need);

/* Point s at a mapping of geometry g. */
static void
set_view(struct pxs_store *s, void *base, const struct pxs_geom *g)
{
	s->base = base;
	s->hdr = base;
	s->g = *g;
	s->mask = g->nslots - 1;
	s->procs = (struct pxs_seg_proc *)(s->base + g->procs_off);
	s->slots = (struct pxs_seg_slot *)(s->base + g->table_off);
	pxs__chain_init(s);
	s->heap = (struct pxs_heap){.base = s->base,
				    .start = g->heap_off,
				    .end = g->heap_end,
				    .h = &s->hdr->heap,
				    .commit = commit,
				    .commit_ctx = s};
}

/* Validate the header, read with pread into a local copy (before mapping:
 * touching a hole of a file on a full /dev/shm through a mapping is a
 * SIGBUS), against a geometry recomputed locally; then map st_size bytes. */
static int
attach_fd(struct pxs_store *s, int fd, const pxs_options *o)
{
	struct stat st;
	struct pxs_seg_hdr h;
	struct pxs_geom g;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1)
		return -EPROTO;
	if (st.st_uid != geteuid() &&
	    !(o && (o->flags & PXS_TRUST_OWNER) &&
	      st.st_uid == o->trusted_owner))
		return -EPERM;
	if ((uint64_t)st.st_size < PXS_MIN_SIZE || st.st_size % PXS_PAGE)
		return -EPROTO;
	if (pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h)
		return -EPROTO;
	if (h.magic != PXS_MAGIC || h.version != PXS_LAYOUT_VERSION ||
	    h.fingerprint != pxs__layout_fingerprint() ||
	    h.size != (uint64_t)st.st_size ||
	    pxs__geometry(h.size, h.capacity, &g) < 0 ||
	    g.nslots != h.nslots || g.procs_off != h.procs_off ||
	    g.table_off != h.table_off || g.heap_off != h.heap_off ||
	    g.heap_end != h.heap_end || h.tables[0].off != g.table_off ||
	    h.tables[0].nslots != g.nslots || h.ntables == 0)
		return -EPROTO;
	/* A genuine segment has its metadata allocated already (this is then
	 * a cheap walk); a file with holes there gets them filled now, or
	 * -ENOSPC, rather than a SIGBUS on first touch through the mapping. */
	if (s->rdonly) {
		if ((uint64_t)st.st_blocks * 512u < g.heap_off)
			return -EPROTO;
	} else {
		int rc = back(fd, g.heap_off);
		if (rc < 0)
			return rc;
	}
	void *base = mmap(NULL, (size_t)st.st_size,
			  s->rdonly ? PROT_READ : PROT_READ | PROT_WRITE,
			  MAP_SHARED, fd, 0);
	if (base == MAP_FAILED)
		return errno == EACCES ? -EACCES : -ENOMEM;
	set_view(s, base, &g);
	/* The chain's descriptors: table 0 against the geometry, the
	 * others against the heap. */
	if (pxs__chain_sync(s) < 0) {
		munmap(base, (size_t)st.st_size);
		s->base = NULL;
		return -EPROTO;
	}
	return 0;
}

/* The heap's commit callback: make [0, need) of the file backed by memory. */
static int
commit(void *store, uint64_t need)
{
	struct pxs_store *s = store;
	if (need > s->g.size)
		need = s->g.size;
	return back(s->fd, need);
}

/* Format a freshly sized object: everything but the magic, then the magic. */
static int
format(struct pxs_store *s, const struct pxs_geom *g)
{
	struct pxs_seg_hdr *h = s->hdr;
	int rc;
	memset(h, 0, sizeof *h);
	h->version = PXS_LAYOUT_VERSION;
	h->fingerprint = pxs__layout_fingerprint();
	h->size = g->size;
	h->capacity = g->capacity;
	h->nslots = g->nslots;
	h->procs_off = g->procs_off;
	h->table_off = g->table_off;
	h->heap_off = g->heap_off;
	h->heap_end = g->heap_end;
	h->tables[0].off = g->table_off;
	h->tables[0].nslots = g->nslots;
	h->ntables = 1;
	h->created_ns = pxs__now_ns(CLOCK_REALTIME);
	h->creator_pid = (int32_t)getpid();
	if ((rc = pxs__mutex_init(&h->table_lock)) < 0 ||
	    (rc = pxs__mutex_init(&h->heap_lock)) < 0 ||
	    (rc = pxs__mutex_init(&h->proc_lock)) < 0)
		return rc;
	for (uint32_t b = 0; b < PXS_BELLS; b++)
		if ((rc = pxs__mutex_init(&h->bells[b].lock)) < 0)
			return rc;
	if ((rc = pxs__chain_format(s->slots, 0, g->nslots / 2)) < 0)
		return rc;
	PXS_FAILPOINT(FP_INIT_MID_TABLE);
	if ((rc = pxs__chain_format(s->slots, g->nslots / 2, g->nslots)) < 0)
		return rc;
	pxs__heap_init(&s->heap, g->heap_off, g->heap_end);
	PXS_FAILPOINT(FP_INIT_BEFORE_PUBLISH);
	__atomic_store_n(&h->magic, PXS_MAGIC,
			 __ATOMIC_RELEASE); /* pairs with attach_fd */
	return 0;
}

/* Create and publish a new segment; on success s is attached to it.
 * Returns -EEXIST if another creator published first. */
static int
create(struct pxs_store *s, const char *name, const pxs_options *o)
{
	struct pxs_geom g;
	uint64_t size =
		o->size ? round_up(o->size, PXS_PAGE) : PXS_DEFAULT_SIZE;
	int rc = pxs__geometry(size, o->capacity, &g);
	if (rc < 0)
		return rc;
	/* A random private name: a predictable one could be squatted by any
	 * user who can write /dev/shm, making creation fail. */
	char tmp[PXS_NAME_MAX + 64];
	int fd = -1;
	for (int tries = 0; fd < 0 && tries < 16; tries++) {
		pxs_key r = pxs__key_random();
		snprintf(tmp, sizeof tmp, "/.pxs-tmp-%s-%016llx", name + 1,
			 (unsigned long long)(r.hi ^ r.lo));
		fd = shm_open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST)
			return -errno;
	}
	if (fd < 0)
		return -EAGAIN;
	/* Held until published: a private object whose lock is free belongs
	 * to a dead creator, and pxs_unlink() may remove it. */
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 1};
	fcntl(fd, F_OFD_SETLK, &fl);
	PXS_FAILPOINT(FP_INIT_AFTER_CREATE);
	mode_t mode = o->mode ? o->mode : 0600;
	void *base = MAP_FAILED;
	if (fchmod(fd, mode) < 0 || ftruncate(fd, (off_t)size) < 0) {
		rc = -errno;
		goto fail;
	}
	/* Back the metadata now; the heap is backed as the allocator reaches it. */
	if ((rc = back(fd, g.heap_off)) < 0)
		goto fail;
	PXS_FAILPOINT(FP_INIT_AFTER_SIZE);
	base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		rc = -ENOMEM;
		goto fail;
	}
	s->fd = fd;
	set_view(s, base, &g);
	if ((rc = format(s, &g)) < 0)
		goto fail;
	char from[sizeof tmp + sizeof SHM_DIR],
		to[PXS_NAME_MAX + 2 + sizeof SHM_DIR];
	snprintf(from, sizeof from, SHM_DIR "%s", tmp + 1);
	snprintf(to, sizeof to, SHM_DIR "%s", name + 1);
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) < 0) {
		/* ENOENT: a pxs_unlink swept our private object in the
		 * moment before we locked it; the caller starts over. */
		rc = errno == ENOENT ? -EAGAIN : -errno;
		goto fail;
	}
	fl.l_type = F_UNLCK;
	fcntl(fd, F_OFD_SETLK, &fl);
	return 0;
fail:
	if (base != MAP_FAILED)
		munmap(base, size);
	shm_unlink(tmp);
	close(fd);
	s->base = NULL;
	s->fd = -1;
	return rc;
}

static int
open_mapped(struct pxs_store *s, const char *name, const pxs_options *o);

/* shm_open's errors for something that exists but is not a regular file
 * (a symlink: ELOOP; a directory: EISDIR, which glibc turns into EINVAL;
 * a device or a fifo) mean "not a proxyshm segment". */
static int
open_error(int err)
{
	switch (err) {
	case ELOOP:
	case EISDIR:
	case EINVAL: /* our name is valid: glibc's EISDIR */
	case ENXIO:
	case ENODEV:
	case ENOTDIR:
		return -EPROTO;
	default:
		return -err;
	}
}

int
pxs__segment_open(struct pxs_store *s, const char *name, const pxs_options *o)
{
	int rc = open_mapped(s, name, o);
	if (rc < 0)
		return rc;
	if ((rc = pxs__segment_reopen(s)) < 0) {
		pxs__segment_close(s);
		return rc;
	}
	s->lockfd = rc;
	return 0;
}

static int
open_mapped(struct pxs_store *s, const char *name, const pxs_options *o)
{
	/* Open without O_CREAT first: O_CREAT on an existing object owned by
     * another user fails under fs.protected_regular. Retry while creators
     * race: each loop either attaches, creates, or sees the other side's
     * result; a bounded count guards against a pathological flip-flop. */
	for (int tries = 0; tries < 64; tries++) {
		int fd = shm_open(name, (s->rdonly ? O_RDONLY : O_RDWR) |
						O_CLOEXEC, 0);
		if (fd >= 0) {
			if (o && (o->flags & PXS_EXCL)) {
				close(fd);
				return -EEXIST;
			}
			int rc = attach_fd(s, fd, o);
			if (rc < 0) {
				close(fd);
				return rc;
			}
			s->fd = fd;
			return 0;
		}
		if (errno != ENOENT)
			return open_error(errno);
		if (!o || !(o->flags & PXS_CREATE))
			return -ENOENT;
		int rc = create(s, name, o);
		if (rc == -EAGAIN)
			continue;
		if (rc != -EEXIST)
			return rc;
		if (o->flags & PXS_EXCL)
			return -EEXIST;
	}
	return -EAGAIN;
}

void
pxs__segment_sweep(const char *name)
{
	char prefix[PXS_NAME_MAX + 16];
	int n = snprintf(prefix, sizeof prefix, ".pxs-tmp-%s-", name + 1);
	DIR *d = opendir(SHM_DIR);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		/* Exactly prefix + 16 hex digits: not the objects of a name
		 * that merely starts like ours ("/a" and "/a-b"). */
		if (strncmp(e->d_name, prefix, (size_t)n) != 0 ||
		    strlen(e->d_name + n) != 16 ||
		    strspn(e->d_name + n, "0123456789abcdef") != 16)
			continue;
		int fd = openat(dirfd(d), e->d_name,
				O_RDWR | O_NOFOLLOW | O_CLOEXEC);
		struct stat st;
		struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET,
				   .l_len = 1};
		/* Ours, and its creator's lock is free: the creator died. */
		if (fd >= 0 && fstat(fd, &st) == 0 && st.st_uid == geteuid() &&
		    fcntl(fd, F_OFD_SETLK, &fl) == 0)
			unlinkat(dirfd(d), e->d_name, 0);
		if (fd >= 0)
			close(fd);
	}
	closedir(d);
}

int
pxs__segment_reopen(const struct pxs_store *s)
{
	char path[64];
	int mode = (s->rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	snprintf(path, sizeof path, "/proc/self/fd/%d", s->fd);
	int fd = open(path, mode);
	if (fd < 0)
		fd = shm_open(s->name, mode, 0);
	return fd < 0 ? -errno : fd;
}

void
pxs__segment_close(struct pxs_store *s)
{
	if (s->base)
		munmap(s->base, s->g.size);
	if (s->fd >= 0)
		close(s->fd);
	if (s->lockfd >= 0)
		close(s->lockfd);
	s->base = NULL;
	s->fd = s->lockfd = -1;
}
