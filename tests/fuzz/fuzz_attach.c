/* fuzz_attach.c - PLAN G1: bytes -> a segment image -> pxs_open -> a
 * fixed script of calls.
 *
 * The input is the start of the file; the rest is zero. The file's size is
 * the header's size field when that is a page multiple between
 * PXS_MIN_SIZE and 4 MiB (so a one-page input can describe any of those
 * geometries), else the input's length rounded up to a page, within the
 * same bounds. Lock words are
 * re-initialised before attaching (scribbled locks are a documented
 * limitation, and would only make the fuzzer wait). If the attach
 * succeeds, hostile.c's victim script calls every function with the keys
 * the image holds and checks every result against the header and every
 * view against the heap's bounds. Set PXS_FUZZ_STRICT=1 to also report
 * the known bugs (tests/hostile/test_known_bugs.c).
 */
#include "fuzz.h"
#include "hostile.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_FILE ((size_t)4 << 20)

static char name[64];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *strict = getenv("PXS_FUZZ_STRICT");
	hx_strict = strict && *strict == '1';
	snprintf(name, sizeof name, "/pxs-fz-attach-%ld", (long)getpid());
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t flen = size < PXS_MIN_SIZE ? PXS_MIN_SIZE
					  : (size + 4095) / 4096 * 4096;
	if (size >= offsetof(struct pxs_seg_hdr, size) + 8) {
		uint64_t hs;
		memcpy(&hs, data + offsetof(struct pxs_seg_hdr, size), 8);
		if (hs >= PXS_MIN_SIZE && hs <= MAX_FILE && hs % 4096 == 0)
			flen = (size_t)hs;
	}
	if (flen > MAX_FILE)
		flen = MAX_FILE;
	/* Map the file and write only what is not zero (and the locks):
	 * the rest stays holes, which read as zeros. */
	shm_unlink(name);
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return 0;
	unsigned char *img = MAP_FAILED;
	if (ftruncate(fd, (off_t)flen) == 0)
		img = mmap(NULL, flen, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			   0);
	close(fd);
	if (img == MAP_FAILED) {
		shm_unlink(name);
		return 0;
	}
	memcpy(img, data, size < flen ? size : flen);
	hx_reinit_locks(img, flen);
	munmap(img, flen);
	int rc;
	pxs_store *s = (pxs_store *)&rc;
	rc = pxs_open(name, NULL, &s);
	FZ_CHECK(hx_acceptable(HX_OPEN, rc), "pxs_open: %d (%s)", rc,
		 pxs_strerror(rc));
	if (rc == 0) {
		fz_script(s, data, size);
		pxs_close(s);
	} else {
		FZ_CHECK(s == NULL, "failed pxs_open left *out set");
	}
	shm_unlink(name);
	return 0;
}
