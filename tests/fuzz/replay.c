/* replay.c - run a fuzz target over files, without libFuzzer.
 *
 * Usage: fuzz-replay-<target> PATH...   (files or directories; a missing
 * path is skipped, so an empty regress/ directory is fine). Each input
 * gets a 20 s alarm; a finding aborts, a hang dies of SIGALRM, and either
 * fails the meson test. Prints how many inputs ran.
 */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int ran;

static void
run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		exit(2);
	}
	size_t cap = 4096, n = 0;
	uint8_t *buf = malloc(cap);
	size_t r;
	while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
		n += r;
		if (n == cap) {
			uint8_t *nb = realloc(buf, cap * 2);
			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
	}
	fclose(f);
	if (!buf)
		exit(2);
	/* libFuzzer hands over a buffer of exactly n bytes: do the same, so
	 * that ASan sees a read past the input. */
	uint8_t *exact = malloc(n ? n : 1);
	if (!exact)
		exit(2);
	memcpy(exact, buf, n);
	free(buf);
	alarm(20);
	LLVMFuzzerTestOneInput(exact, n);
	alarm(0);
	free(exact);
	ran++;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
run_path(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		run_file(path);
		return;
	}
	DIR *d = opendir(path);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;
	while (d && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char **nn = realloc(names, (n + 1) * sizeof *names);
		if (!nn)
			exit(2);
		names = nn;
		size_t len = strlen(path) + strlen(de->d_name) + 2;
		names[n] = malloc(len);
		snprintf(names[n++], len, "%s/%s", path, de->d_name);
	}
	if (d)
		closedir(d);
	if (n)
		qsort(names, n, sizeof *names, by_name); /* same order */
	for (size_t i = 0; i < n; i++) {
		run_path(names[i]);
		free(names[i]);
	}
	free(names);
}

int
main(int argc, char **argv)
{
	LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++)
		run_path(argv[i]);
	printf("replayed %d inputs\n", ran);
	return 0;
}
