// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for topic.c: filter validation, matching (also against an independent recursive reference over
 * every filter and topic of a small alphabet), plain levels, and the template-to-filter rule that routes and
 * presets' ignore filters share.
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/topic.h"
#include "unit.h"

/* Moved from test_route.c with route_filter_matches (the same assertions). */
static void test_filter_matches(void)
{
	CU_ASSERT_TRUE(topic_matches("a/+/status/#", "a/b/status", 10));
	CU_ASSERT_TRUE(topic_matches("a/+/status/#", "a/b/status/x/y", 14));
	CU_ASSERT_FALSE(topic_matches("a/+/status/#", "a/b/statusx", 11));
	CU_ASSERT_TRUE(topic_matches("a/+", "a/", 2)); /* '+' matches an empty level */
	CU_ASSERT_FALSE(topic_matches("a/+", "a/b/c", 5));
	CU_ASSERT_FALSE(topic_matches("a/+", "a", 1));
	CU_ASSERT_TRUE(topic_matches("#", "x/y", 3));
	CU_ASSERT_FALSE(topic_matches("#", "$SYS/x", 6));
	CU_ASSERT_FALSE(topic_matches("+/x", "$SYS/x", 6));
	CU_ASSERT_TRUE(topic_matches("tele/+/LWT", "tele/plug/LWT", 13));
	CU_ASSERT_TRUE(topic_matches("tele/+/LWT", "tele/plug/LWTX", 13)); /* the length, not strlen */
}

static void test_filter_valid(void)
{
	static const char *const good[] = { "solar/+/+/#",    "#",   "+",     "a//b", "/a", "a/",
					    "sensor/%u/data", "+/+", "$SYS/#" };
	static const char *const bad[] = { "", "a/#/b", "a/b#", "a+/b", "a/+b", "##", "++", "a/#/", "#/a" };
	char *huge = malloc(TOPIC_MAX_LEN + 2);

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (!topic_filter_valid(good[i]))
			fprintf(stderr, "\n  '%s' refused\n", good[i]);
		CU_ASSERT_TRUE(topic_filter_valid(good[i]));
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (topic_filter_valid(bad[i]))
			fprintf(stderr, "\n  '%s' accepted\n", bad[i]);
		CU_ASSERT_FALSE(topic_filter_valid(bad[i]));
	}
	CU_ASSERT_FALSE(topic_filter_valid(NULL));
	CU_ASSERT_PTR_NOT_NULL_FATAL(huge);
	memset(huge, 'a', TOPIC_MAX_LEN);
	huge[TOPIC_MAX_LEN] = '\0';
	CU_ASSERT_TRUE(topic_filter_valid(huge));
	huge[TOPIC_MAX_LEN] = 'a';
	huge[TOPIC_MAX_LEN + 1] = '\0';
	CU_ASSERT_FALSE(topic_filter_valid(huge));
	free(huge);
}

static void test_level_plain(void)
{
	CU_ASSERT_TRUE(topic_level_plain("acme"));
	CU_ASSERT_TRUE(topic_level_plain("site-a.1_x"));
	CU_ASSERT_FALSE(topic_level_plain("a/b"));
	CU_ASSERT_FALSE(topic_level_plain("a+"));
	CU_ASSERT_FALSE(topic_level_plain("#"));
}

static void expect_filter(const char *template_text, const char *want)
{
	char *got = topic_filter_from_template(template_text);

	ASSERT_STR(got, want);
	free(got);
}

static void test_filter_from_template(void)
{
	expect_filter("solar/{tenant}/{serial}/telemetry", "solar/+/+/telemetry");
	expect_filter("site/+/{tenant}/{serial}", "site/+/+/+");
	expect_filter("home/solar/{serial}/{point+}", "home/solar/+/#");
	expect_filter("shellies/{serial}/relay/{point}", "shellies/+/relay/+");
	expect_filter("a//{x}/", "a//+/");
	expect_filter("/{tenant}", "/+");
	expect_filter("literal/{not", "literal/{not"); /* not a whole {...} level: kept */
	expect_filter("{point+}x/{}", "{point+}x/+");  /* "{point+}x" is no placeholder; "{}" is one */
}

/* ---- an independent reference: recursive, level by level, straight from the MQTT text ---- */

static bool ref_match(const char *f, const char *t, bool first)
{
	const char *fs = strchr(f, '/'), *ts = strchr(t, '/');
	size_t fl = fs ? (size_t)(fs - f) : strlen(f), tl = ts ? (size_t)(ts - t) : strlen(t);

	if (first && t[0] == '$' && (f[0] == '+' || f[0] == '#'))
		return false;
	if (fl == 1 && f[0] == '#')
		return true;
	if (!(fl == 1 && f[0] == '+') && (fl != tl || strncmp(f, t, fl) != 0))
		return false;
	if (!fs && !ts)
		return true;
	if (fs && !ts)
		return strcmp(fs + 1, "#") == 0; /* "a/#" matches "a" */
	if (!fs)
		return false;
	return ref_match(fs + 1, ts + 1, false);
}

/* Every string of up to max characters over alphabet, through visit. */
static void each_string(const char *alphabet, size_t max, char *buf, size_t at,
			void (*visit)(const char *, void *), void *ctx)
{
	buf[at] = '\0';
	visit(buf, ctx);
	if (at == max)
		return;
	for (const char *c = alphabet; *c; c++) {
		buf[at] = *c;
		each_string(alphabet, max, buf, at + 1, visit, ctx);
	}
}

struct pair_run {
	const char *filter;
	size_t checked, wrong;
};

static void check_topic(const char *topic, void *ctx)
{
	struct pair_run *run = ctx;
	char padded[16];
	size_t len = strlen(topic);
	bool want, got;

	if (!*topic || strpbrk(topic, "+#"))
		return;
	want = ref_match(run->filter, topic, true);
	memcpy(padded, topic, len);
	padded[len] = 'z'; /* no NUL at topic[len]: the length decides */
	got = topic_matches(run->filter, padded, len);
	run->checked++;
	if (got != want && run->wrong++ < 5)
		fprintf(stderr, "\n  filter '%s' topic '%s': got %d, want %d\n", run->filter, topic, got,
			want);
}

static void check_filter(const char *filter, void *ctx)
{
	struct pair_run *total = ctx, run = { .filter = filter };
	char topic[8];

	if (!topic_filter_valid(filter))
		return;
	each_string("a$/", 4, topic, 0, check_topic, &run);
	total->checked += run.checked;
	total->wrong += run.wrong;
}

static void test_matches_reference(void)
{
	struct pair_run total = { 0 };
	char filter[8];

	each_string("a$/+#", 4, filter, 0, check_filter, &total);
	CU_ASSERT(total.checked > 10000);
	CU_ASSERT_EQUAL(total.wrong, 0);
}

int main(void)
{
	static const struct unit_test tests[] = {
		UNIT_TEST(test_filter_matches),	   UNIT_TEST(test_filter_valid),
		UNIT_TEST(test_level_plain),	   UNIT_TEST(test_filter_from_template),
		UNIT_TEST(test_matches_reference),
	};

	return unit_run("topic", NULL, NULL, tests, UNIT_COUNT(tests));
}
