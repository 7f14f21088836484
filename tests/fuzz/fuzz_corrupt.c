/* fuzz_corrupt.c - PLAN G4: patches over a valid, populated segment.
 *
 * At start-up the target builds a real 1 MiB store (objects of many
 * sizes, pending, reserved, set, abandoned and evicted-but-pinned
 * futures and objects, pins) and copies its bytes while the handle is
 * still attached: that copy is the template. Each input is a list of
 * patches (region, offset, bytes) over the metadata: header, process
 * table, slot table, and the heap's used part (block headers, free-list
 * links). Lock words are then re-initialised (documented limitation), the
 * image is attached, and the victim script runs, as in fuzz_attach. The
 * template's creator is dead by then, so every attach also exercises the
 * reaper on corrupted state.
 */
#include "fuzz.h"
#include "hostile.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SIZE ((size_t)1 << 20)

static char name[64];
static unsigned char *tmpl; /* the template image */
static unsigned char *map;  /* our raw mapping of the fuzzed file */
static struct pxs_geom geom;
static uint64_t heap_top;

static void
build_template(void)
{
	char tname[64];
	pxs_store *s, *t;
	pxs_options o = {
		.flags = PXS_CREATE | PXS_EXCL, .size = SIZE, .capacity = 64};
	pxs_key k;
	pxs_view v1, v2, v3;
	void *w;
	static unsigned char buf[5000];
	snprintf(tname, sizeof tname, "/pxs-fz-tmpl-%ld", (long)getpid());
	shm_unlink(tname);
	if (pxs_open(tname, &o, &s) || pxs_open(tname, NULL, &t))
		abort();
	for (int i = 0; i < 12; i++) {
		memset(buf, i, sizeof buf);
		k = (pxs_key){0x100, (uint64_t)i + 1};
		if (pxs_put_at(s, k, buf, (size_t)(i * i * 37 % 5000)))
			abort();
	}
	if (pxs_get(s, (pxs_key){0x100, 3}, &v1) ||
	    pxs_get(t, (pxs_key){0x100, 4}, &v2) ||
	    pxs_get(t, (pxs_key){0x100, 5}, &v3) ||
	    pxs_evict(s, (pxs_key){0x100, 5}) ||
	    pxs_evict(s, (pxs_key){0x100, 7}))
		abort();
	if (pxs_future_new_at(s, (pxs_key){0x200, 1}) ||
	    pxs_future_new_at(t, (pxs_key){0x200, 2}) ||
	    pxs_future_new_at(s, (pxs_key){0x200, 3}) ||
	    pxs_future_reserve(s, (pxs_key){0x200, 3}, 300, &w) ||
	    pxs_future_new_at(s, (pxs_key){0x200, 4}) ||
	    pxs_future_set(s, (pxs_key){0x200, 4}, "set", 3) ||
	    pxs_future_new_at(s, (pxs_key){0x200, 5}) ||
	    pxs_future_reserve(t, (pxs_key){0x200, 5}, 100, &w) ||
	    pxs_evict(s, (pxs_key){0x200, 5}))
		abort();
	memset(w, 0x77, 100);
	geom = s->g;
	heap_top = s->hdr->heap.top;
	tmpl = malloc(SIZE);
	memcpy(tmpl, s->base, SIZE); /* with both handles still attached */
	pxs_release(s, &v1);
	pxs_release(t, &v2);
	pxs_release(t, &v3);
	pxs_close(t);
	pxs_close(s);
	shm_unlink(tname);
}

static void
remove_file(void)
{
	shm_unlink(name);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *strict = getenv("PXS_FUZZ_STRICT");
	hx_strict = strict && *strict == '1';
	build_template();
	snprintf(name, sizeof name, "/pxs-fz-corrupt-%ld", (long)getpid());
	shm_unlink(name);
	atexit(remove_file); /* libFuzzer and replay both end with exit() */
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)SIZE) < 0)
		abort();
	map = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = {data, size};
	const uint64_t regions[4][2] = {
		{0, sizeof(struct pxs_seg_hdr)},
		{geom.procs_off, 4 * sizeof(struct pxs_seg_proc)},
		{geom.table_off, geom.heap_off - geom.table_off},
		{geom.heap_off, heap_top - geom.heap_off},
	};
	memcpy(map, tmpl, SIZE);
	while (in.n) {
		uint8_t sel = fz_u8(&in);
		const uint64_t *r = regions[sel & 3];
		uint64_t off = r[0] + fz_u16(&in) % r[1];
		size_t len = 1 + (sel >> 2 & 7);
		for (size_t i = 0; i < len && off + i < SIZE; i++) {
			uint8_t b = fz_u8(&in);
			if (sel & 0x20)
				map[off + i] ^= b; /* flip bits */
			else
				map[off + i] = b; /* overwrite */
		}
	}
	hx_reinit_locks(map, SIZE);
	pxs_store *s = NULL;
	int rc = pxs_open(name, NULL, &s);
	FZ_CHECK(hx_acceptable(HX_OPEN, rc), "pxs_open: %d (%s)", rc,
		 pxs_strerror(rc));
	if (rc == 0) {
		pxs_key keys[] = {{0x100, 1},  {0x100, 3}, {0x100, 5},
				  {0x100, 12}, {0x200, 1}, {0x200, 2},
				  {0x200, 3},  {0x200, 4}, {0x200, 5}};
		fz_victim(s, keys, sizeof keys / sizeof *keys, size);
		fz_script(s, data, size);
		pxs_close(s);
	}
	return 0;
}
