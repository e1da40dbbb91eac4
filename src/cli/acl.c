// SPDX-License-Identifier: Apache-2.0
/*
 * acl: the broker's access control from the device registry (export), and a lint of hand-tuned Mosquitto
 * acl_files against it (check). See include/acl.h for what each command promises.
 *
 * How the check reasons. A Mosquitto filter is a sequence of levels: a literal, '+' (one level), '#' (any
 * levels, last). We compile each into tokens LIT / ANY / STAR (a pattern level holding %c, which the client
 * chooses and which may contain '/', becomes ANY STAR: one or more levels of anything). Whether a filter
 * matches a topic then depends only on, level by level, which of the file's literals the topic's level
 * equals (or none of them: a "fresh" value) and on the topic's length. So for one user there are finitely
 * many classes of topics the file can tell apart; the walk below visits one representative topic of every
 * class inside the route tree <prefix>/<tenant>/<serial>/..., pruning as soon as no grant of the user can
 * match any longer topic, and asks each representative the same decision Mosquitto 2.0 makes. A
 * representative allowed outside the user's own subtree is a finding, attributed to the rule that granted
 * it. This is exact for `topic` rules and %u (string substitution, as Mosquitto does), and errs on the side
 * of a finding for %c.
 */
#include "cli/acl.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db.h"
#include "util/text.h"
#include "util/topic.h"
#include "util/xalloc.h"

#define ACL_TOPIC_MAX_LEVELS 200    /* Mosquitto's TOPIC_HIERARCHY_LIMIT */
#define ACL_WALK_NODE_BUDGET 200000 /* topics visited per user and access before we give up on completeness */
#define ACL_PROBE_LEAF	     "telemetry" /* the default route's last level: what a device must be able to publish */

/* ------------------------------------------------------------------------------------------------------ */
/* Small helpers                                                                                           */
/* ------------------------------------------------------------------------------------------------------ */

/* An owned string formatted like printf. */
static char *format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *format(const char *fmt, ...)
{
	va_list ap;
	int n;
	char *s;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	s = xmalloc((size_t)(n < 0 ? 0 : n) + 1);
	va_start(ap, fmt);
	vsnprintf(s, (size_t)(n < 0 ? 0 : n) + 1, fmt, ap);
	va_end(ap);
	return s;
}

/* A printable copy of operator- or file-supplied text (control characters become \xNN). Owned. */
static char *printable(const char *s)
{
	size_t len = strlen(s), cap = len * 4 + 8;
	char *out = xmalloc(cap);

	return text_escape(out, cap, s, len);
}

/* A growable text buffer for the export. */
struct strbuf {
	char *buf;
	size_t len, cap;
};

static void sb_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (sb->len + (size_t)n + 1 > sb->cap) {
		sb->cap = (sb->len + (size_t)n + 1) * 2;
		sb->buf = xrealloc(sb->buf, sb->cap);
	}
	va_start(ap, fmt);
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
}

/* ------------------------------------------------------------------------------------------------------ */
/* Topic filters as tokens                                                                                 */
/* ------------------------------------------------------------------------------------------------------ */

enum tok_kind {
	TOK_LIT,  /* this exact level */
	TOK_ANY,  /* '+': any one level */
	TOK_STAR, /* '#' (or the tail of a %c level): any number of levels, including none */
};

struct tok {
	enum tok_kind kind;
	char *text; /* owned, TOK_LIT only */
	size_t len;
};

struct filter {
	struct tok *toks;
	size_t n;
};

/* One level of a topic. text NULL is a "fresh" level: equal to no literal of any rule. Borrowed. */
struct level {
	const char *text;
	size_t len;
};

static void filter_add(struct filter *f, enum tok_kind kind, const char *text, size_t len)
{
	f->toks = xrealloc(f->toks, (f->n + 1) * sizeof(*f->toks));
	f->toks[f->n].kind = kind;
	f->toks[f->n].text = kind == TOK_LIT ? xstrndup(text, len) : NULL;
	f->toks[f->n].len = kind == TOK_LIT ? len : 0;
	f->n++;
}

static void filter_clear(struct filter *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->toks[i].text);
	free(f->toks);
	f->toks = NULL;
	f->n = 0;
}

/* text with every "%u" replaced by username (Mosquitto 2.0 substitutes strings, so "x%u" works too). */
static char *substitute_user(const char *text, const char *username)
{
	struct strbuf sb = { 0 };
	const char *p = text, *hit;

	sb_printf(&sb, "%s", "");
	while ((hit = strstr(p, "%u")) != NULL) {
		sb_printf(&sb, "%.*s%s", (int)(hit - p), p, username);
		p = hit + 2;
	}
	sb_printf(&sb, "%s", p);
	return sb.buf;
}

/*
 * Compiles filter text. For a pattern (username non-NULL), %u is substituted first, and a level holding %c
 * becomes ANY STAR: the client picks its id, which may contain '/', so it stands for one or more levels.
 */
static void filter_compile(struct filter *out, const char *text, bool pattern, const char *username)
{
	char *expanded = pattern && username ? substitute_user(text, username) : NULL;
	const char *s = expanded ? expanded : text;

	out->toks = NULL;
	out->n = 0;
	for (;;) {
		const char *slash = strchr(s, '/');
		size_t len = slash ? (size_t)(slash - s) : strlen(s);

		if (len == 1 && s[0] == '+') {
			filter_add(out, TOK_ANY, NULL, 0);
		} else if (len == 1 && s[0] == '#') {
			filter_add(out, TOK_STAR, NULL, 0);
		} else if (pattern && memmem(s, len, "%c", 2)) {
			filter_add(out, TOK_ANY, NULL, 0);
			filter_add(out, TOK_STAR, NULL, 0);
		} else {
			filter_add(out, TOK_LIT, s, len);
		}
		if (!slash)
			break;
		s = slash + 1;
	}
	free(expanded);
}

static bool tok_is_dollar(const struct tok *t)
{
	return t->kind == TOK_LIT && t->len > 0 && t->text[0] == '$';
}

static bool level_is(const struct level *l, const char *s)
{
	return l->text && l->len == strlen(s) && memcmp(l->text, s, l->len) == 0;
}

static bool tok_matches_level(const struct tok *t, const struct level *l)
{
	switch (t->kind) {
	case TOK_LIT:
		return l->text && l->len == t->len && memcmp(l->text, t->text, t->len) == 0;
	case TOK_ANY:
	case TOK_STAR:
		return true;
	}
	return false;
}

/* Adds the positions reachable without consuming a level: a STAR may match nothing. */
static void nfa_close(const struct filter *f, bool *set)
{
	for (size_t i = 0; i < f->n; i++)
		if (set[i] && f->toks[i].kind == TOK_STAR)
			set[i + 1] = true;
}

/*
 * Runs f over levels[0..n): on return set[i] (f->n + 1 entries) says "tokens [0, i) can have matched exactly
 * these levels". Returns whether any position is still alive (some longer topic might still match).
 */
static bool nfa_run(const struct filter *f, const struct level *levels, size_t n, bool *set)
{
	bool stack_next[64], *next = f->n + 1 <= 64 ? stack_next : xmalloc(f->n + 1);
	bool alive = true;

	memset(set, 0, f->n + 1);
	set[0] = true;
	nfa_close(f, set);
	/* A topic starting with '$' is matched only by a filter whose first level is literal. */
	if (n > 0 && levels[0].text && levels[0].len > 0 && levels[0].text[0] == '$' &&
	    (f->n == 0 || f->toks[0].kind != TOK_LIT)) {
		set[0] = false;
		alive = false;
	}
	for (size_t k = 0; k < n && alive; k++) {
		memset(next, 0, f->n + 1);
		for (size_t i = 0; i < f->n; i++) {
			if (!set[i] || !tok_matches_level(&f->toks[i], &levels[k]))
				continue;
			if (f->toks[i].kind == TOK_STAR)
				next[i] = true;
			else
				next[i + 1] = true;
		}
		nfa_close(f, next);
		memcpy(set, next, f->n + 1);
		alive = false;
		for (size_t i = 0; i <= f->n; i++)
			alive = alive || set[i];
	}
	if (!alive)
		memset(set, 0, f->n + 1);
	if (next != stack_next)
		free(next);
	return alive;
}

static bool filter_matches(const struct filter *f, const struct level *levels, size_t n)
{
	bool stack_set[64], *set = f->n + 1 <= 64 ? stack_set : xmalloc(f->n + 1);
	bool match = nfa_run(f, levels, n, set) && set[f->n];

	if (set != stack_set)
		free(set);
	return match;
}

/* Splits a topic name into levels (borrowing topic). Returns the count; *out is owned. */
static size_t topic_split(const char *topic, struct level **out)
{
	size_t n = 0;
	const char *s = topic;

	*out = NULL;
	for (;;) {
		const char *slash = strchr(s, '/');
		*out = xrealloc(*out, (n + 1) * sizeof(**out));
		(*out)[n].text = s;
		(*out)[n].len = slash ? (size_t)(slash - s) : strlen(s);
		n++;
		if (!slash)
			break;
		s = slash + 1;
	}
	return n;
}

bool acl_filter_valid(const char *filter)
{
	size_t levels = 1;

	if (!topic_filter_valid(filter))
		return false;
	for (const char *s = strchr(filter, '/'); s; s = strchr(s + 1, '/'))
		levels++;
	return levels <= ACL_TOPIC_MAX_LEVELS + 1;
}

bool acl_topic_matches(const char *filter, const char *topic)
{
	if (!acl_filter_valid(filter) || !topic || !topic[0] || strpbrk(topic, "+#"))
		return false;
	return topic_matches(filter, topic, strlen(topic));
}

/* Can one topic consume tokens a[i..] and b[j..] both? memo: 0 unknown, 1 yes, 2 no. */
static bool overlap_from(const struct filter *a, const struct filter *b, size_t i, size_t j,
			 unsigned char *memo)
{
	unsigned char *m = &memo[i * (b->n + 1) + j];
	const struct tok *ta, *tb;
	bool result = false;

	if (*m)
		return *m == 1;
	if (i == a->n && j == b->n) {
		result = true;
	} else if (i < a->n && a->toks[i].kind == TOK_STAR && overlap_from(a, b, i + 1, j, memo)) {
		result = true;
	} else if (j < b->n && b->toks[j].kind == TOK_STAR && overlap_from(a, b, i, j + 1, memo)) {
		result = true;
	} else if (i < a->n && j < b->n) {
		/* Both consume the same level; a STAR stays where it is. Both staying gains nothing. */
		ta = &a->toks[i];
		tb = &b->toks[j];
		if (!(ta->kind == TOK_STAR && tb->kind == TOK_STAR) &&
		    !(ta->kind == TOK_LIT && tb->kind == TOK_LIT &&
		      (ta->len != tb->len || memcmp(ta->text, tb->text, ta->len) != 0)))
			result = overlap_from(a, b, ta->kind == TOK_STAR ? i : i + 1,
					      tb->kind == TOK_STAR ? j : j + 1, memo);
	}
	*m = result ? 1 : 2;
	return result;
}

static bool filters_overlap(const struct filter *a, const struct filter *b)
{
	unsigned char *memo;
	bool result;

	if (a->n == 0 || b->n == 0)
		return false;
	/* A '$' topic needs a literal first level in both. */
	if ((tok_is_dollar(&a->toks[0]) || tok_is_dollar(&b->toks[0])) &&
	    (a->toks[0].kind != TOK_LIT || b->toks[0].kind != TOK_LIT))
		return false;
	memo = xcalloc((a->n + 1) * (b->n + 1), 1);
	result = overlap_from(a, b, 0, 0, memo);
	free(memo);
	return result;
}

bool acl_filters_overlap(const char *a, const char *b)
{
	struct filter fa, fb;
	bool result;

	if (!acl_filter_valid(a) || !acl_filter_valid(b))
		return false;
	filter_compile(&fa, a, false, NULL);
	filter_compile(&fb, b, false, NULL);
	result = filters_overlap(&fa, &fb);
	filter_clear(&fa);
	filter_clear(&fb);
	return result;
}

/* Does outer (a valid filter: STAR only last) match every topic inner matches, from tokens i and j on? */
static bool covers_from(const struct filter *outer, const struct filter *inner, size_t i, size_t j)
{
	for (;; i++, j++) {
		if (i < outer->n && outer->toks[i].kind == TOK_STAR)
			return true;
		if (j == inner->n)
			return i == outer->n;
		if (i == outer->n || inner->toks[j].kind == TOK_STAR)
			return false;
		if (outer->toks[i].kind == TOK_ANY)
			continue;
		if (inner->toks[j].kind != TOK_LIT || inner->toks[j].len != outer->toks[i].len ||
		    memcmp(inner->toks[j].text, outer->toks[i].text, outer->toks[i].len) != 0)
			return false;
	}
}

bool acl_filter_covers(const char *outer, const char *inner)
{
	struct filter fo, fi;
	bool result;

	if (!acl_filter_valid(outer) || !acl_filter_valid(inner))
		return false;
	filter_compile(&fo, outer, false, NULL);
	filter_compile(&fi, inner, false, NULL);
	/* inner's '$' topics are matched by outer only if outer starts with a literal. */
	if (tok_is_dollar(&fi.toks[0]) && fo.toks[0].kind != TOK_LIT)
		result = false;
	else
		result = covers_from(&fo, &fi, 0, 0);
	filter_clear(&fo);
	filter_clear(&fi);
	return result;
}

/* ------------------------------------------------------------------------------------------------------ */
/* The acl_file parser                                                                                     */
/* ------------------------------------------------------------------------------------------------------ */

/* Trims leading and trailing white space in place (Mosquitto's mosquitto_trimblanks). */
static char *trim_blanks(char *s)
{
	size_t len;

	while (*s && isspace((unsigned char)*s))
		s++;
	len = strlen(s);
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		s[--len] = '\0';
	return s;
}

static void add_error(struct acl_file *f, unsigned line, char *message)
{
	f->errors = xrealloc(f->errors, (f->error_count + 1) * sizeof(*f->errors));
	f->errors[f->error_count].line = line;
	f->errors[f->error_count].message = message;
	f->error_count++;
}

/* Parses the access word of a topic/pattern line; false if it is none Mosquitto knows. */
static bool parse_access(const char *word, unsigned *access)
{
	if (strcmp(word, "read") == 0)
		*access = ACL_ACCESS_READ;
	else if (strcmp(word, "write") == 0)
		*access = ACL_ACCESS_WRITE;
	else if (strcmp(word, "readwrite") == 0)
		*access = ACL_ACCESS_READ | ACL_ACCESS_WRITE;
	else if (strcmp(word, "deny") == 0)
		*access = ACL_ACCESS_DENY;
	else
		return false;
	return true;
}

/* `topic|pattern [ACCESS] FILTER`; save is the strtok_r state after the keyword. */
static void parse_rule(struct acl_file *f, unsigned line, bool pattern, const char *current_user, char *save,
		       const char *text)
{
	char *access_word = strtok_r(NULL, " ", &save), *rest, *filter, *shown;
	unsigned access = ACL_ACCESS_READ | ACL_ACCESS_WRITE;
	struct acl_rule *r;

	if (!access_word) {
		add_error(f, line,
			  format("'%s' has no topic: mosquitto refuses to start",
				 pattern ? "pattern" : "topic"));
		return;
	}
	rest = strtok_r(NULL, "", &save);
	if (rest) {
		filter = trim_blanks(rest);
		if (!parse_access(access_word, &access)) {
			shown = printable(access_word);
			add_error(
				f, line,
				format("invalid access type '%s' (read, write, readwrite or deny): mosquitto refuses "
				       "to start",
				       shown));
			free(shown);
			return;
		}
	} else {
		/* One word: it is the topic, and the access is readwrite. "topic read" grants readwrite on a
		 * topic named "read", which is surely not what was meant. */
		filter = access_word;
		if (parse_access(filter, &(unsigned){ 0 })) {
			shown = printable(text);
			add_error(
				f, line,
				format("'%s' has no topic: mosquitto reads it as readwrite access to the topic "
				       "named '%s'",
				       shown, filter));
			free(shown);
		}
	}
	if (!acl_filter_valid(filter)) {
		shown = printable(filter);
		add_error(f, line, format("invalid topic filter '%s': mosquitto refuses to start", shown));
		free(shown);
		return;
	}
	f->rules = xrealloc(f->rules, (f->rule_count + 1) * sizeof(*f->rules));
	r = &f->rules[f->rule_count++];
	r->line = line;
	r->pattern = pattern;
	r->user = !pattern && current_user ? xstrdup(current_user) : NULL;
	r->access = access;
	r->filter = xstrdup(filter);
	r->text = xstrdup(text);
}

/* One line (NUL-terminated, modified in place). *current_user is the name of the last `user` line. */
static void parse_line(struct acl_file *f, unsigned line, char *buf, char **current_user)
{
	char *save = NULL, *word, *text, *shown;
	size_t len = strlen(buf);

	while (len > 0 && isspace((unsigned char)buf[len - 1]))
		buf[--len] = '\0';
	if (buf[0] == '#')
		return;
	text = xstrdup(buf);
	word = strtok_r(buf, " ", &save);
	if (!word) {
		/* blank */
	} else if (strcmp(word, "topic") == 0 || strcmp(word, "pattern") == 0) {
		parse_rule(f, line, word[0] == 'p', *current_user, save, trim_blanks(text));
	} else if (strcmp(word, "user") == 0) {
		char *rest = strtok_r(NULL, "", &save);
		char *name = rest ? trim_blanks(rest) : NULL;
		if (!name || !name[0]) {
			add_error(f, line, format("'user' without a name: mosquitto refuses to start"));
		} else {
			free(*current_user);
			*current_user = xstrdup(name);
			f->users = xrealloc(f->users, (f->user_count + 1) * sizeof(*f->users));
			f->users[f->user_count].line = line;
			f->users[f->user_count].name = xstrdup(name);
			f->user_count++;
		}
	} else {
		shown = printable(text);
		add_error(
			f, line,
			format("invalid line '%s' (a comment needs '#' in the first column; words are separated "
			       "by spaces, not tabs): mosquitto refuses to start",
			       shown));
		free(shown);
	}
	free(text);
}

struct acl_file *acl_file_parse(const char *text, size_t len)
{
	struct acl_file *f = xcalloc(1, sizeof(*f));
	const char *p = text, *end = text + len;
	char *current_user = NULL;
	unsigned line = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		char *buf = xstrndup(p, n);

		parse_line(f, ++line, buf, &current_user);
		free(buf);
		p = nl ? nl + 1 : end;
	}
	free(current_user);
	return f;
}

void acl_file_free(struct acl_file *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->rule_count; i++) {
		free(f->rules[i].user);
		free(f->rules[i].filter);
		free(f->rules[i].text);
	}
	for (size_t i = 0; i < f->user_count; i++)
		free(f->users[i].name);
	for (size_t i = 0; i < f->error_count; i++)
		free(f->errors[i].message);
	free(f->rules);
	free(f->users);
	free(f->errors);
	free(f);
}

/* ------------------------------------------------------------------------------------------------------ */
/* Mosquitto's decision                                                                                    */
/* ------------------------------------------------------------------------------------------------------ */

struct crule {
	const struct acl_rule *rule;
	struct filter f;
	bool client; /* a pattern with %c */
};

/* The rules that apply to one username, compiled: its `topic` rules and every pattern that applies. */
struct ruleset {
	struct crule *user_rules;
	size_t user_count;
	struct crule *patterns;
	size_t pattern_count;
	size_t max_tokens;
};

static void ruleset_add(struct crule **list, size_t *count, const struct acl_rule *r, const char *username,
			size_t *max_tokens)
{
	struct crule *c;

	*list = xrealloc(*list, (*count + 1) * sizeof(**list));
	c = &(*list)[(*count)++];
	c->rule = r;
	c->client = r->pattern && strstr(r->filter, "%c") != NULL;
	filter_compile(&c->f, r->filter, r->pattern, username);
	if (c->f.n > *max_tokens)
		*max_tokens = c->f.n;
}

/* The file's rules sorted for lookups by user: `topic` rules by (user, line), then the patterns in order.
 * Borrows the file. */
struct rule_index {
	const struct acl_rule **by_user;
	size_t by_user_count;
	const struct acl_rule **patterns;
	size_t pattern_count;
};

static int compare_rules_by_user(const void *a, const void *b)
{
	const struct acl_rule *x = *(const struct acl_rule *const *)a,
			      *y = *(const struct acl_rule *const *)b;
	int c = strcmp(x->user, y->user);

	return c ? c : (x->line > y->line) - (x->line < y->line);
}

static void rule_index_build(struct rule_index *ix, const struct acl_file *f)
{
	memset(ix, 0, sizeof(*ix));
	ix->by_user = xcalloc(f->rule_count + 1, sizeof(*ix->by_user));
	ix->patterns = xcalloc(f->rule_count + 1, sizeof(*ix->patterns));
	for (size_t i = 0; i < f->rule_count; i++) {
		if (f->rules[i].pattern)
			ix->patterns[ix->pattern_count++] = &f->rules[i];
		else if (f->rules[i].user)
			ix->by_user[ix->by_user_count++] = &f->rules[i];
	}
	if (ix->by_user_count > 1)
		qsort(ix->by_user, ix->by_user_count, sizeof(*ix->by_user), compare_rules_by_user);
}

static void rule_index_clear(struct rule_index *ix)
{
	free(ix->by_user);
	free(ix->patterns);
	memset(ix, 0, sizeof(*ix));
}

/* The rules that apply to username (NULL: anonymous), in file order within each list. */
static void ruleset_build(struct ruleset *rs, const struct acl_file *f, const struct rule_index *ix,
			  const char *username)
{
	size_t lo = 0, hi = ix->by_user_count;

	memset(rs, 0, sizeof(*rs));
	if (!username) {
		for (size_t i = 0; i < f->rule_count; i++)
			if (!f->rules[i].pattern && !f->rules[i].user)
				ruleset_add(&rs->user_rules, &rs->user_count, &f->rules[i], NULL,
					    &rs->max_tokens);
	} else {
		/* The first rule of username, by bisection. */
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (strcmp(ix->by_user[mid]->user, username) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (size_t i = lo; i < ix->by_user_count && strcmp(ix->by_user[i]->user, username) == 0; i++)
			ruleset_add(&rs->user_rules, &rs->user_count, ix->by_user[i], username,
				    &rs->max_tokens);
	}
	/* A pattern with %u does not apply to a client without a username. */
	for (size_t i = 0; i < ix->pattern_count; i++)
		if (username || !strstr(ix->patterns[i]->filter, "%u"))
			ruleset_add(&rs->patterns, &rs->pattern_count, ix->patterns[i], username,
				    &rs->max_tokens);
}

static void ruleset_clear(struct ruleset *rs)
{
	for (size_t i = 0; i < rs->user_count; i++)
		filter_clear(&rs->user_rules[i].f);
	for (size_t i = 0; i < rs->pattern_count; i++)
		filter_clear(&rs->patterns[i].f);
	free(rs->user_rules);
	free(rs->patterns);
	memset(rs, 0, sizeof(*rs));
}

/* First deny, then grant, within one list (Mosquitto puts deny rules at the front of each list). */
static bool decide_list(const struct crule *list, size_t count, const struct level *levels, size_t n,
			unsigned access, bool skip_client_denies, struct acl_decision *d)
{
	for (size_t i = 0; i < count; i++)
		if (list[i].rule->access == ACL_ACCESS_DENY && !(skip_client_denies && list[i].client) &&
		    filter_matches(&list[i].f, levels, n)) {
			*d = (struct acl_decision){ .allowed = false, .line = list[i].rule->line };
			return true;
		}
	for (size_t i = 0; i < count; i++)
		if ((list[i].rule->access & access) && filter_matches(&list[i].f, levels, n)) {
			*d = (struct acl_decision){ .allowed = true, .line = list[i].rule->line };
			return true;
		}
	return false;
}

static struct acl_decision ruleset_decide(const struct ruleset *rs, const struct level *levels, size_t n,
					  unsigned access)
{
	struct acl_decision d = { .allowed = false, .line = 0 };

	if (decide_list(rs->user_rules, rs->user_count, levels, n, access, false, &d))
		return d;
	decide_list(rs->patterns, rs->pattern_count, levels, n, access, true, &d);
	return d;
}

struct acl_decision acl_decide(const struct acl_file *f, const char *username, const char *topic,
			       unsigned access)
{
	struct ruleset rs;
	struct level *levels;
	size_t n;
	struct acl_decision d = { .allowed = false, .line = 0 };
	struct rule_index ix;

	if (!topic || !topic[0] || strpbrk(topic, "+#"))
		return d;
	rule_index_build(&ix, f);
	ruleset_build(&rs, f, &ix, username);
	n = topic_split(topic, &levels);
	d = ruleset_decide(&rs, levels, n, access);
	free(levels);
	ruleset_clear(&rs);
	rule_index_clear(&ix);
	return d;
}

/* ------------------------------------------------------------------------------------------------------ */
/* The lint                                                                                                */
/* ------------------------------------------------------------------------------------------------------ */

/* Who a walk is about. tenant and serial NULL: no own subtree (the bridge). */
struct subject {
	const char *username;
	const char *tenant;
	const char *serial;
};

/* Findings that come from walks, aggregated per (line, kind): a pattern may affect many devices. */
struct hit {
	unsigned line;
	enum acl_finding_kind kind;
	size_t subjects;
	const struct subject *last;  /* to count each subject once */
	const struct subject *first; /* the example's subject */
	char *username, *tenant;     /* the first subject's */
	char *witness;		     /* the shortest example topic */
	size_t witness_depth;
};

struct lint {
	const struct acl_file *f;
	struct rule_index ix;
	const struct acl_device **by_serial; /* the registry's devices sorted by serial */
	const struct acl_user_line **users_by_name;
	const struct acl_registry *reg;
	const struct acl_policy *pol;
	char **prefix; /* the prefix's levels */
	size_t prefix_n;
	struct hit *hits;
	size_t hit_count;
	struct acl_finding *findings;
	size_t finding_count;
};

static void add_finding(struct lint *lt, unsigned line, enum acl_finding_kind kind, char *message)
{
	lt->findings = xrealloc(lt->findings, (lt->finding_count + 1) * sizeof(*lt->findings));
	lt->findings[lt->finding_count].line = line;
	lt->findings[lt->finding_count].kind = kind;
	lt->findings[lt->finding_count].message = message;
	lt->finding_count++;
}

/* The rule on line (rules are in file order, so by ascending line); NULL if none. */
static const struct acl_rule *rule_at(const struct acl_file *f, unsigned line)
{
	size_t lo = 0, hi = f->rule_count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (f->rules[mid].line < line)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < f->rule_count && f->rules[lo].line == line ? &f->rules[lo] : NULL;
}

/* A registered tenant other than own that no rule names: it stands for "any other tenant" in examples. */
static const char *other_tenant(const struct lint *lt, const struct ruleset *rs, const char *own)
{
	for (size_t t = 0; t < lt->reg->tenant_count; t++) {
		const char *slug = lt->reg->tenants[t];
		bool named = own && strcmp(slug, own) == 0;
		for (size_t i = 0; i < rs->user_count + rs->pattern_count && !named; i++) {
			const struct filter *fl = i < rs->user_count ? &rs->user_rules[i].f :
								       &rs->patterns[i - rs->user_count].f;
			for (size_t k = 0; k < fl->n && !named; k++)
				named = fl->toks[k].kind == TOK_LIT && strcmp(fl->toks[k].text, slug) == 0;
		}
		if (!named)
			return slug;
	}
	return NULL;
}

/* The example topic: fresh levels shown as a placeholder (or a real tenant that behaves the same). */
static char *render_topic(const struct lint *lt, const struct ruleset *rs, const struct subject *who,
			  const struct level *levels, size_t n)
{
	struct strbuf sb = { 0 };
	const char *other = other_tenant(lt, rs, who->tenant);

	sb_printf(&sb, "%s", "");
	for (size_t k = 0; k < n; k++) {
		const char *sep = k ? "/" : "";
		if (levels[k].text)
			sb_printf(&sb, "%s%.*s", sep, (int)levels[k].len, levels[k].text);
		else if (k == lt->prefix_n)
			sb_printf(&sb, "%s%s", sep, other ? other : "<other-tenant>");
		else if (k == lt->prefix_n + 1)
			sb_printf(&sb, "%s<serial>", sep);
		else
			sb_printf(&sb, "%s<any>", sep);
	}
	return sb.buf;
}

static void record_hit(struct lint *lt, const struct ruleset *rs, const struct subject *who, unsigned line,
		       enum acl_finding_kind kind, const struct level *levels, size_t n)
{
	struct hit *h = NULL;

	for (size_t i = 0; i < lt->hit_count && !h; i++)
		if (lt->hits[i].line == line && lt->hits[i].kind == kind)
			h = &lt->hits[i];
	if (!h) {
		lt->hits = xrealloc(lt->hits, (lt->hit_count + 1) * sizeof(*lt->hits));
		h = &lt->hits[lt->hit_count++];
		memset(h, 0, sizeof(*h));
		h->line = line;
		h->kind = kind;
		h->first = who;
		h->username = xstrdup(who->username ? who->username : "");
		h->tenant = xstrdup(who->tenant ? who->tenant : "");
	}
	if (h->last != who) {
		h->subjects++;
		h->last = who;
	}
	if (h->first == who && (!h->witness || n < h->witness_depth)) {
		free(h->witness);
		h->witness = render_topic(lt, rs, who, levels, n);
		h->witness_depth = n;
	}
}

struct walk {
	struct lint *lt;
	const struct ruleset *rs;
	const struct subject *who;
	unsigned access;
	struct level *topic; /* max_depth levels */
	size_t max_depth;
	size_t nodes;
	bool truncated;
	void (*visit)(struct walk *w, size_t depth, struct acl_decision d);
};

/* Is some grant of the user still able to match a topic that starts with topic[0..depth)? */
static bool grant_alive(const struct walk *w, size_t depth)
{
	bool stack_set[64], *set;
	bool alive = false;

	for (size_t i = 0; i < w->rs->user_count + w->rs->pattern_count && !alive; i++) {
		const struct crule *c = i < w->rs->user_count ? &w->rs->user_rules[i] :
								&w->rs->patterns[i - w->rs->user_count];
		if (!(c->rule->access & w->access))
			continue;
		set = c->f.n + 1 <= 64 ? stack_set : xmalloc(c->f.n + 1);
		alive = nfa_run(&c->f, w->topic, depth, set);
		if (set != stack_set)
			free(set);
	}
	return alive;
}

static int compare_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The literals any rule could compare the next level with, after topic[0..depth), plus extra (may be NULL);
 * sorted, unique. Owned array of borrowed strings. */
static size_t next_literals(const struct walk *w, size_t depth, const char *extra, const char ***out)
{
	const char **lits = NULL;
	size_t count = 0, unique = 0;
	bool stack_set[64], *set;

	if (extra) {
		lits = xrealloc(lits, (count + 1) * sizeof(*lits));
		lits[count++] = extra;
	}
	for (size_t i = 0; i < w->rs->user_count + w->rs->pattern_count; i++) {
		const struct crule *c = i < w->rs->user_count ? &w->rs->user_rules[i] :
								&w->rs->patterns[i - w->rs->user_count];
		set = c->f.n + 1 <= 64 ? stack_set : xmalloc(c->f.n + 1);
		if (nfa_run(&c->f, w->topic, depth, set))
			for (size_t k = 0; k < c->f.n; k++)
				if (set[k] && c->f.toks[k].kind == TOK_LIT) {
					lits = xrealloc(lits, (count + 1) * sizeof(*lits));
					lits[count++] = c->f.toks[k].text;
				}
		if (set != stack_set)
			free(set);
	}
	if (count > 1)
		qsort(lits, count, sizeof(*lits), compare_str);
	for (size_t i = 0; i < count; i++)
		if (unique == 0 || strcmp(lits[unique - 1], lits[i]) != 0)
			lits[unique++] = lits[i];
	*out = lits;
	return unique;
}

static void walk_node(struct walk *w, size_t depth)
{
	const size_t p = w->lt->prefix_n;
	const char **lits = NULL;
	size_t count;

	if (++w->nodes > ACL_WALK_NODE_BUDGET) {
		w->truncated = true;
		return;
	}
	if (depth >= p + 2) {
		struct acl_decision d = ruleset_decide(w->rs, w->topic, depth, w->access);
		if (d.allowed)
			w->visit(w, depth, d);
	}
	if (depth == w->max_depth)
		return;
	if (depth < p) {
		/* Inside the prefix: only the route tree is of interest. */
		w->topic[depth] =
			(struct level){ .text = w->lt->prefix[depth], .len = strlen(w->lt->prefix[depth]) };
		if (grant_alive(w, depth + 1))
			walk_node(w, depth + 1);
		return;
	}
	count = next_literals(w, depth,
			      depth == p     ? w->who->tenant :
			      depth == p + 1 ? w->who->serial :
					       NULL,
			      &lits);
	for (size_t i = 0; i <= count && !w->truncated; i++) {
		/* Every literal the rules could compare with, then one value equal to none of them. */
		w->topic[depth] = i < count ? (struct level){ .text = lits[i], .len = strlen(lits[i]) } :
					      (struct level){ .text = NULL, .len = 0 };
		if (grant_alive(w, depth + 1))
			walk_node(w, depth + 1);
	}
	free(lits);
}

/* Visits every class of topic in the route tree that the subject may access; w->visit gets the allowed ones. */
static void walk(struct lint *lt, const struct ruleset *rs, const struct subject *who, unsigned access,
		 void (*visit)(struct walk *w, size_t depth, struct acl_decision d))
{
	struct walk w = { .lt = lt, .rs = rs, .who = who, .access = access, .visit = visit };

	w.max_depth = (rs->max_tokens > lt->prefix_n + 2 ? rs->max_tokens : lt->prefix_n + 2) + 1;
	w.topic = xcalloc(w.max_depth, sizeof(*w.topic));
	walk_node(&w, 0);
	free(w.topic);
	if (w.truncated)
		add_finding(lt, 0, ACL_FINDING_UNANALYSED,
			    format("user '%s': too many distinct topics to analyse %s access completely "
				   "(stopped after %d); simplify its rules",
				   who->username ? who->username : "(anonymous)",
				   access == ACL_ACCESS_WRITE ? "write" : "read", ACL_WALK_NODE_BUDGET));
}

static bool in_own_subtree(const struct walk *w, size_t depth)
{
	const size_t p = w->lt->prefix_n;

	return w->who->tenant && depth >= p + 2 && level_is(&w->topic[p], w->who->tenant) &&
	       level_is(&w->topic[p + 1], w->who->serial);
}

static void visit_device_write(struct walk *w, size_t depth, struct acl_decision d)
{
	const struct acl_rule *r;
	enum acl_finding_kind kind;

	if (in_own_subtree(w, depth))
		return;
	r = rule_at(w->lt->f, d.line);
	if (r && r->pattern)
		kind = ACL_FINDING_PATTERN_WRITE;
	else if (level_is(&w->topic[w->lt->prefix_n], w->who->tenant))
		kind = ACL_FINDING_CROSS_DEVICE_WRITE;
	else
		kind = ACL_FINDING_CROSS_TENANT_WRITE;
	record_hit(w->lt, w->rs, w->who, d.line, kind, w->topic, depth);
}

static void visit_device_read(struct walk *w, size_t depth, struct acl_decision d)
{
	if (level_is(&w->topic[w->lt->prefix_n], w->who->tenant))
		return;
	record_hit(w->lt, w->rs, w->who, d.line, ACL_FINDING_CROSS_TENANT_READ, w->topic, depth);
}

/* The bridge's own grants only: what patterns give every user is judged by what they give devices. */
static void visit_bridge_write(struct walk *w, size_t depth, struct acl_decision d)
{
	const struct acl_rule *r = rule_at(w->lt->f, d.line);

	if (r && !r->pattern)
		record_hit(w->lt, w->rs, w->who, d.line, ACL_FINDING_BRIDGE_WRITE, w->topic, depth);
}

/* The device's own telemetry topic under the default route. Owned. */
static char *probe_topic(const struct acl_policy *pol, const struct acl_device *dev)
{
	return format("%s/%s/%s/%s", pol->topic_prefix, dev->tenant, dev->serial, ACL_PROBE_LEAF);
}

/* The device's broker username: its serial, or what the loader set (serial@tenant). */
static const char *device_user(const struct acl_device *dev)
{
	return dev->username ? dev->username : dev->serial;
}

static int compare_devices_by_serial(const void *a, const void *b)
{
	return strcmp(device_user(*(const struct acl_device *const *)a),
		      device_user(*(const struct acl_device *const *)b));
}

/* The device whose broker username is name (by_serial is sorted by username). */
static const struct acl_device *find_device(const struct lint *lt, const char *name)
{
	struct acl_device key = { .serial = name };
	const struct acl_device *keyp = &key, **found;

	found = bsearch(&keyp, lt->by_serial, lt->reg->device_count, sizeof(*lt->by_serial),
			compare_devices_by_serial);
	return found ? *found : NULL;
}

static int compare_user_lines(const void *a, const void *b)
{
	const struct acl_user_line *x = *(const struct acl_user_line *const *)a;
	const struct acl_user_line *y = *(const struct acl_user_line *const *)b;
	int c = strcmp(x->name, y->name);

	return c ? c : (x->line > y->line) - (x->line < y->line);
}

/* The first `user NAME` line, 0 if none. */
static unsigned first_user_line(const struct lint *lt, const char *name)
{
	size_t lo = 0, hi = lt->f->user_count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(lt->users_by_name[mid]->name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < lt->f->user_count && strcmp(lt->users_by_name[lo]->name, name) == 0 ?
		       lt->users_by_name[lo]->line :
		       0;
}

/* Lines that name users: devices that are disabled, and names nobody registered. */
static void lint_users(struct lint *lt)
{
	for (size_t i = 0; i < lt->f->user_count; i++) {
		const struct acl_user_line *u = &lt->f->users[i];
		const struct acl_device *dev = find_device(lt, u->name);
		char *name;

		if (strcmp(u->name, lt->pol->bridge_user) == 0 || (dev && dev->enabled))
			continue;
		name = printable(u->name);
		if (dev)
			add_finding(
				lt, u->line, ACL_FINDING_DISABLED_DEVICE,
				format("user '%s' is a disabled device (tenant %s): remove its rules and its "
				       "password",
				       name, dev->tenant));
		else
			add_finding(
				lt, u->line, ACL_FINDING_UNKNOWN_USER,
				format("user '%s' is neither a registered device nor the bridge user '%s'",
				       name, lt->pol->bridge_user));
		free(name);
	}
}

/* Rule shapes: anonymous rules, and write grants with a wildcard at the tenant level or above. */
static void lint_rules(struct lint *lt)
{
	struct filter tree;
	char *tree_text = format("%s/+/+/#", lt->pol->topic_prefix);

	filter_compile(&tree, tree_text, false, NULL);
	for (size_t i = 0; i < lt->f->rule_count; i++) {
		const struct acl_rule *r = &lt->f->rules[i];
		char *text = printable(r->text);
		struct filter fl;
		size_t first_wild = SIZE_MAX;

		if (!r->pattern && !r->user)
			add_finding(
				lt, r->line, ACL_FINDING_ANONYMOUS,
				format("'%s' applies to anonymous clients (it comes before any 'user' line)",
				       text));
		if (r->access & ACL_ACCESS_WRITE) {
			/* %u stands for one literal level here: what matters is where the wildcards are. */
			filter_compile(&fl, r->filter, r->pattern, r->pattern ? "%u" : NULL);
			for (size_t k = 0; k < fl.n && first_wild == SIZE_MAX; k++)
				if (fl.toks[k].kind != TOK_LIT)
					first_wild = k;
			if (first_wild <= lt->prefix_n && filters_overlap(&fl, &tree))
				add_finding(
					lt, r->line, ACL_FINDING_WILDCARD_WRITE,
					format("'%s' grants write with a wildcard at the tenant level or above: it "
					       "spans every tenant's tree %s",
					       text, tree_text));
			filter_clear(&fl);
		}
		free(text);
	}
	filter_clear(&tree);
	free(tree_text);
}

/* Each enabled device: what it may publish and read outside its own subtree, and whether it may publish at
 * all. Then the bridge: that it publishes nowhere in the tree and reads every device's telemetry. */
static void lint_subjects(struct lint *lt)
{
	const struct acl_registry *reg = lt->reg;
	struct subject *subjects = xcalloc(reg->device_count + 1, sizeof(*subjects));
	size_t enabled = 0, unreadable = 0;
	char *unreadable_example = NULL;
	struct ruleset rs;

	for (size_t i = 0; i < reg->device_count; i++) {
		const struct acl_device *dev = &reg->devices[i];
		struct subject *who = &subjects[i];
		struct acl_decision d;
		struct level *levels;
		char *probe;
		size_t n;

		if (!dev->enabled || strcmp(device_user(dev), lt->pol->bridge_user) == 0)
			continue;
		enabled++;
		*who = (struct subject){ .username = device_user(dev),
					 .tenant = dev->tenant,
					 .serial = dev->serial };
		ruleset_build(&rs, lt->f, &lt->ix, device_user(dev));
		walk(lt, &rs, who, ACL_ACCESS_WRITE, visit_device_write);
		walk(lt, &rs, who, ACL_ACCESS_READ, visit_device_read);
		probe = probe_topic(lt->pol, dev);
		n = topic_split(probe, &levels);
		d = ruleset_decide(&rs, levels, n, ACL_ACCESS_WRITE);
		if (!d.allowed) {
			char *why =
				d.line ? format("line %u denies it", d.line) : xstrdup("no rule grants it");
			add_finding(lt, first_user_line(lt, device_user(dev)), ACL_FINDING_NO_WRITE_RULE,
				    format("device %s (tenant %s) cannot publish %s: %s", dev->serial,
					   dev->tenant, probe, why));
			free(why);
		}
		free(levels);
		free(probe);
		ruleset_clear(&rs);
	}

	struct subject *bridge = &subjects[reg->device_count];
	*bridge = (struct subject){ .username = lt->pol->bridge_user };
	ruleset_build(&rs, lt->f, &lt->ix, lt->pol->bridge_user);
	walk(lt, &rs, bridge, ACL_ACCESS_WRITE, visit_bridge_write);
	for (size_t i = 0; i < reg->device_count; i++) {
		const struct acl_device *dev = &reg->devices[i];
		struct level *levels;
		char *probe;
		size_t n;

		if (!dev->enabled || strcmp(device_user(dev), lt->pol->bridge_user) == 0)
			continue;
		probe = probe_topic(lt->pol, dev);
		n = topic_split(probe, &levels);
		if (!ruleset_decide(&rs, levels, n, ACL_ACCESS_READ).allowed && unreadable++ == 0)
			unreadable_example = xstrdup(probe);
		free(levels);
		free(probe);
	}
	if (unreadable) {
		char *user = printable(lt->pol->bridge_user);
		add_finding(
			lt, first_user_line(lt, lt->pol->bridge_user), ACL_FINDING_BRIDGE_CANNOT_READ,
			format("the bridge user '%s' cannot read %s (%zu of %zu enabled device(s)): their "
			       "readings would never reach the bridge",
			       user, unreadable_example, unreadable, enabled));
		free(user);
	}
	free(unreadable_example);
	ruleset_clear(&rs);

	/* The walks' hits become findings; the subjects they point to die here. */
	for (size_t i = 0; i < lt->hit_count; i++) {
		struct hit *h = &lt->hits[i];
		const struct acl_rule *r = rule_at(lt->f, h->line);
		char *text = printable(r ? r->text : "?");
		char *more =
			h->subjects > 1 ? format(" (and %zu more device(s))", h->subjects - 1) : xstrdup("");
		char *message = NULL;
		bool implied = false;

		/* A rule that reaches other tenants reaches the device's neighbours too: say the worse once. */
		for (size_t j = 0; j < lt->hit_count && h->kind == ACL_FINDING_CROSS_DEVICE_WRITE; j++)
			implied = implied || (lt->hits[j].line == h->line &&
					      lt->hits[j].kind == ACL_FINDING_CROSS_TENANT_WRITE);

		switch (implied ? ACL_FINDING_UNANALYSED : h->kind) {
		case ACL_FINDING_UNANALYSED:
			break; /* implied by another hit */
		case ACL_FINDING_CROSS_TENANT_WRITE:
			message = format(
				"'%s' lets device %s (tenant %s) publish into another tenant's tree, e.g. %s",
				text, h->username, h->tenant, h->witness);
			break;
		case ACL_FINDING_CROSS_DEVICE_WRITE:
			message = format(
				"'%s' lets device %s publish into another device's subtree of tenant %s, "
				"e.g. %s",
				text, h->username, h->tenant, h->witness);
			break;
		case ACL_FINDING_PATTERN_WRITE:
			message = format(
				"'%s' applies to every user and does not confine each device to its own "
				"subtree: %zu device(s) may publish outside it, e.g. %s (tenant %s) to %s",
				text, h->subjects, h->username, h->tenant, h->witness);
			break;
		case ACL_FINDING_CROSS_TENANT_READ:
			message = format(
				"'%s' lets device %s (tenant %s)%s read another tenant's tree, e.g. %s", text,
				h->username, h->tenant, more, h->witness);
			break;
		case ACL_FINDING_BRIDGE_WRITE:
			message = format(
				"'%s' lets the bridge user '%s' publish into the route tree, e.g. %s (it "
				"only needs to read)",
				text, h->username, h->witness);
			break;
		default:
			message = format("'%s': e.g. %s", text, h->witness);
			break;
		}
		if (message)
			add_finding(lt, h->line, h->kind, message);
		free(more);
		free(text);
		free(h->username);
		free(h->tenant);
		free(h->witness);
	}
	free(lt->hits);
	lt->hits = NULL;
	lt->hit_count = 0;
	free(subjects);
}

static int compare_findings(const void *a, const void *b)
{
	const struct acl_finding *x = a, *y = b;
	/* File-wide findings (line 0) after the others. */
	unsigned lx = x->line ? x->line : ~0u, ly = y->line ? y->line : ~0u;

	if (lx != ly)
		return lx < ly ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return strcmp(x->message, y->message);
}

/* Splits the prefix into owned levels. */
static size_t split_prefix(const char *prefix, char ***out)
{
	struct level *levels;
	size_t n = topic_split(prefix, &levels);

	*out = xcalloc(n, sizeof(**out));
	for (size_t i = 0; i < n; i++)
		(*out)[i] = xstrndup(levels[i].text, levels[i].len);
	free(levels);
	return n;
}

size_t acl_lint(const struct acl_file *f, const struct acl_registry *reg, const struct acl_policy *pol,
		struct acl_finding **out)
{
	struct lint lt = { .f = f, .reg = reg, .pol = pol };

	lt.prefix_n = split_prefix(pol->topic_prefix, &lt.prefix);
	rule_index_build(&lt.ix, f);
	lt.by_serial = xcalloc(reg->device_count + 1, sizeof(*lt.by_serial));
	for (size_t i = 0; i < reg->device_count; i++)
		lt.by_serial[i] = &reg->devices[i];
	if (reg->device_count > 1)
		qsort(lt.by_serial, reg->device_count, sizeof(*lt.by_serial), compare_devices_by_serial);
	lt.users_by_name = xcalloc(f->user_count + 1, sizeof(*lt.users_by_name));
	for (size_t i = 0; i < f->user_count; i++)
		lt.users_by_name[i] = &f->users[i];
	if (f->user_count > 1)
		qsort(lt.users_by_name, f->user_count, sizeof(*lt.users_by_name), compare_user_lines);
	for (size_t i = 0; i < f->error_count; i++)
		add_finding(&lt, f->errors[i].line, ACL_FINDING_SYNTAX, xstrdup(f->errors[i].message));
	lint_users(&lt);
	lint_rules(&lt);
	lint_subjects(&lt);
	if (lt.finding_count > 1)
		qsort(lt.findings, lt.finding_count, sizeof(*lt.findings), compare_findings);
	for (size_t i = 0; i < lt.prefix_n; i++)
		free(lt.prefix[i]);
	free(lt.prefix);
	free(lt.by_serial);
	free(lt.users_by_name);
	rule_index_clear(&lt.ix);
	*out = lt.findings;
	return lt.finding_count;
}

void acl_findings_free(struct acl_finding *findings, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(findings[i].message);
	free(findings);
}

const char *acl_finding_kind_name(enum acl_finding_kind kind)
{
	switch (kind) {
	case ACL_FINDING_SYNTAX:
		return "syntax";
	case ACL_FINDING_CROSS_TENANT_WRITE:
		return "cross-tenant-write";
	case ACL_FINDING_CROSS_DEVICE_WRITE:
		return "cross-device-write";
	case ACL_FINDING_PATTERN_WRITE:
		return "pattern-write";
	case ACL_FINDING_WILDCARD_WRITE:
		return "wildcard-write";
	case ACL_FINDING_CROSS_TENANT_READ:
		return "cross-tenant-read";
	case ACL_FINDING_BRIDGE_WRITE:
		return "bridge-write";
	case ACL_FINDING_ANONYMOUS:
		return "anonymous";
	case ACL_FINDING_UNKNOWN_USER:
		return "unknown-user";
	case ACL_FINDING_DISABLED_DEVICE:
		return "disabled-device";
	case ACL_FINDING_NO_WRITE_RULE:
		return "no-write-rule";
	case ACL_FINDING_BRIDGE_CANNOT_READ:
		return "bridge-cannot-read";
	case ACL_FINDING_UNANALYSED:
		return "unanalysed";
	}
	return "?";
}

/* ------------------------------------------------------------------------------------------------------ */
/* The export                                                                                              */
/* ------------------------------------------------------------------------------------------------------ */

/* A name that is safe as one topic level and as a broker username: no '/', no wildcard, no '%' (pattern
 * substitution), no white space or control character, not empty. */
static bool safe_name(const char *s)
{
	if (!s || !s[0])
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= ' ' || *p == 0x7f || *p == '/' || *p == '+' || *p == '#' || *p == '%')
			return false;
	return true;
}

static bool safe_prefix(const char *prefix)
{
	struct level *levels;
	size_t n;
	bool ok = prefix && prefix[0] && prefix[0] != '$';

	if (!ok)
		return false;
	n = topic_split(prefix, &levels);
	for (size_t i = 0; i < n && ok; i++) {
		char *level = xstrndup(levels[i].text, levels[i].len);
		ok = safe_name(level);
		free(level);
	}
	free(levels);
	return ok;
}

static int compare_devices(const void *a, const void *b)
{
	const struct acl_device *x = *(const struct acl_device *const *)a,
				*y = *(const struct acl_device *const *)b;
	int c = strcmp(x->tenant, y->tenant);

	return c ? c : strcmp(x->serial, y->serial);
}

/*
 * Whether two of the devices would log in with one username (a serial in two tenants while usernames are
 * serials): then either could publish as the other, so the export refuses, naming both tenants. Sorts list
 * by username (the caller sorts it again).
 */
static bool shared_username(const struct acl_device **list, size_t n, char *err, size_t errlen)
{
	if (n > 1)
		qsort(list, n, sizeof(*list), compare_devices_by_serial);
	for (size_t i = 1; i < n; i++)
		if (strcmp(device_user(list[i - 1]), device_user(list[i])) == 0) {
			snprintf(
				err, errlen,
				"serial '%s' is registered in tenants '%s' and '%s', and a broker username names "
				"one client: export with --username serial@tenant (each device then logs in as "
				"<serial>@<tenant>), or disable one of them",
				list[i]->serial, list[i - 1]->tenant, list[i]->tenant);
			return true;
		}
	return false;
}

/* The enabled devices sorted by tenant and serial (borrowed pointers), after checking every name. */
static int export_devices(const struct acl_registry *reg, const struct acl_policy *pol,
			  const struct acl_device ***out, size_t *count, char *err, size_t errlen)
{
	const struct acl_device **list = xcalloc(reg->device_count + 1, sizeof(*list));
	size_t n = 0;

	if (!safe_prefix(pol->topic_prefix)) {
		snprintf(err, errlen,
			 "topic prefix '%s' is not usable: it needs one or more non-empty levels without "
			 "wildcards, '%%', white space or a leading '$'",
			 pol->topic_prefix ? pol->topic_prefix : "");
		goto fail;
	}
	if (!safe_name(pol->bridge_user)) {
		snprintf(err, errlen, "bridge user '%s' is not usable: no white space, '/', '+', '#' or '%%'",
			 pol->bridge_user ? pol->bridge_user : "");
		goto fail;
	}
	for (size_t i = 0; i < reg->device_count; i++) {
		const struct acl_device *dev = &reg->devices[i];
		if (!dev->enabled)
			continue;
		if (!safe_name(dev->serial) || !safe_name(dev->tenant) || !safe_name(device_user(dev))) {
			snprintf(err, errlen,
				 "device '%s' of tenant '%s' has a name the broker would misread",
				 dev->serial, dev->tenant);
			goto fail;
		}
		if (strcmp(device_user(dev), pol->bridge_user) == 0) {
			snprintf(err, errlen,
				 "device '%s' has the bridge user's name: choose another --bridge-user",
				 device_user(dev));
			goto fail;
		}
		list[n++] = dev;
	}
	if (shared_username(list, n, err, errlen))
		goto fail;
	if (n > 1)
		qsort(list, n, sizeof(*list), compare_devices);
	*out = list;
	*count = n;
	return 0;
fail:
	free(list);
	return -EINVAL;
}

static char *export_mosquitto(const struct acl_policy *pol, const struct acl_device **devs, size_t n)
{
	struct strbuf sb = { 0 };
	const char *tenant = NULL;
	size_t tenants = 0;

	for (size_t i = 0; i < n; i++)
		if (i == 0 || strcmp(devs[i]->tenant, devs[i - 1]->tenant) != 0)
			tenants++;
	sb_printf(
		&sb,
		"# Mosquitto acl_file for mqtt2pg, written by `mqtt2pg acl export` from the device registry.\n"
		"# Regenerate it after registry changes and reload mosquitto (SIGHUP); edits here are lost.\n"
		"# Each enabled device logs in with its %s as username and may publish only into its own\n"
		"# subtree %s/<tenant>/<serial>/#. The bridge user may read the route tree. Nothing else is\n"
		"# granted: no anonymous rules, no patterns. %zu device(s) in %zu tenant(s).\n"
		"\n"
		"user %s\n"
		"topic read %s/+/+/#\n",
		n && devs[0]->username ? "<serial>@<tenant>" : "serial", pol->topic_prefix, n, tenants,
		pol->bridge_user, pol->topic_prefix);
	for (size_t i = 0; i < n; i++) {
		if (!tenant || strcmp(tenant, devs[i]->tenant) != 0) {
			tenant = devs[i]->tenant;
			sb_printf(&sb, "\n# tenant %s\n", tenant);
		}
		sb_printf(&sb, "user %s\ntopic write %s/%s/%s/#\n", device_user(devs[i]), pol->topic_prefix,
			  devs[i]->tenant, devs[i]->serial);
	}
	return sb.buf;
}

static cJSON *dynsec_acl(const char *type, const char *topic)
{
	cJSON *acl = cJSON_CreateObject();

	cJSON_AddStringToObject(acl, "acltype", type);
	cJSON_AddStringToObject(acl, "topic", topic);
	cJSON_AddNumberToObject(acl, "priority", 0);
	cJSON_AddBoolToObject(acl, "allow", true);
	return acl;
}

static void dynsec_client(cJSON *clients, const char *username, const char *textname, const char *role)
{
	cJSON *client = cJSON_CreateObject(), *roles = cJSON_CreateArray(), *ref = cJSON_CreateObject();

	cJSON_AddStringToObject(client, "username", username);
	cJSON_AddStringToObject(client, "textName", textname);
	cJSON_AddStringToObject(ref, "rolename", role);
	cJSON_AddItemToArray(roles, ref);
	cJSON_AddItemToObject(client, "roles", roles);
	cJSON_AddItemToArray(clients, client);
}

/*
 * The dynamic-security plugin's state: default deny for publishing, receiving and subscribing; one role per
 * device that may publish into its subtree; a bridge role that may subscribe to and receive the route tree
 * (also through a shared subscription). Clients carry no password: set them with `mosquitto_ctrl dynsec
 * setClientPassword`; until then nobody can log in as them.
 */
static char *export_dynsec(const struct acl_policy *pol, const struct acl_device **devs, size_t n)
{
	cJSON *root = cJSON_CreateObject(), *defaults = cJSON_CreateObject();
	cJSON *clients = cJSON_CreateArray(), *roles = cJSON_CreateArray(), *role, *acls;
	char *tree = format("%s/+/+/#", pol->topic_prefix),
	     *shared = format("$share/+/%s/+/+/#", pol->topic_prefix);
	char *text;

	cJSON_AddBoolToObject(defaults, "publishClientSend", false);
	cJSON_AddBoolToObject(defaults, "publishClientReceive", false);
	cJSON_AddBoolToObject(defaults, "subscribe", false);
	cJSON_AddBoolToObject(defaults, "unsubscribe", true);
	cJSON_AddItemToObject(root, "defaultACLAccess", defaults);

	dynsec_client(clients, pol->bridge_user, "mqtt2pg bridge", "mqtt2pg-bridge");
	role = cJSON_CreateObject();
	acls = cJSON_CreateArray();
	cJSON_AddStringToObject(role, "rolename", "mqtt2pg-bridge");
	cJSON_AddStringToObject(role, "textName", "reads the route tree");
	cJSON_AddItemToArray(acls, dynsec_acl("subscribePattern", tree));
	cJSON_AddItemToArray(acls, dynsec_acl("subscribePattern", shared));
	cJSON_AddItemToArray(acls, dynsec_acl("publishClientReceive", tree));
	cJSON_AddItemToObject(role, "acls", acls);
	cJSON_AddItemToArray(roles, role);

	for (size_t i = 0; i < n; i++) {
		char *rolename = format("mqtt2pg-device-%s", device_user(devs[i]));
		char *textname = format("device of tenant %s", devs[i]->tenant);
		char *subtree = format("%s/%s/%s/#", pol->topic_prefix, devs[i]->tenant, devs[i]->serial);

		dynsec_client(clients, device_user(devs[i]), textname, rolename);
		role = cJSON_CreateObject();
		acls = cJSON_CreateArray();
		cJSON_AddStringToObject(role, "rolename", rolename);
		cJSON_AddStringToObject(role, "textName", textname);
		cJSON_AddItemToArray(acls, dynsec_acl("publishClientSend", subtree));
		cJSON_AddItemToObject(role, "acls", acls);
		cJSON_AddItemToArray(roles, role);
		free(rolename);
		free(textname);
		free(subtree);
	}
	cJSON_AddItemToObject(root, "clients", clients);
	cJSON_AddItemToObject(root, "groups", cJSON_CreateArray());
	cJSON_AddItemToObject(root, "roles", roles);
	text = cJSON_Print(root);
	cJSON_Delete(root);
	free(tree);
	free(shared);
	if (!text)
		abort(); /* cJSON fails only when allocation fails; so does xmalloc */
	/* cJSON's allocator is malloc: hand back an xmalloc'd copy with a final newline. */
	char *out = format("%s\n", text);
	free(text);
	return out;
}

int acl_export(const struct acl_registry *reg, const struct acl_policy *pol, enum acl_format format_kind,
	       char **out, char *err, size_t errlen)
{
	const struct acl_device **devs = NULL;
	size_t n = 0;
	int rc = export_devices(reg, pol, &devs, &n, err, errlen);

	if (rc < 0)
		return rc;
	*out = format_kind == ACL_FORMAT_DYNSEC ? export_dynsec(pol, devs, n) :
						  export_mosquitto(pol, devs, n);
	free(devs);
	return 0;
}

/* ------------------------------------------------------------------------------------------------------ */
/* The command                                                                                             */
/* ------------------------------------------------------------------------------------------------------ */

#define ACL_USAGE                                                                              \
	"acl export [--format mosquitto|dynsec] [--bridge-user NAME] [--topic-prefix PREFIX] " \
	"[--username serial|serial@tenant] [-o FILE]\n"                                        \
	"       mqtt2pg acl check FILE [--bridge-user NAME] [--topic-prefix PREFIX] "          \
	"[--username serial|serial@tenant]"

/* The registry as read from the database; strings borrow res. */
struct loaded_registry {
	PGresult *res;
	struct acl_device *devices;
	const char **tenants;
	struct acl_registry reg;
};

static void loaded_registry_clear(struct loaded_registry *lr)
{
	PQclear(lr->res);
	free(lr->devices);
	free(lr->tenants);
	memset(lr, 0, sizeof(*lr));
}

/*
 * Reads every tenant and device in one statement (one snapshot); qualified: each device's broker username
 * is <serial>@<tenant>. Returns 0, or -1 after printing why.
 */
static int load_registry(const char *conninfo, bool qualified, struct loaded_registry *lr)
{
	PGconn *conn;
	char err[1024];
	int rows;

	memset(lr, 0, sizeof(*lr));
	if (!conninfo) {
		fprintf(stderr,
			"mqtt2pg: no admin database: pass --db CONNINFO, set $MQTT2PG_ADMIN_CONNINFO, "
			"or database.admin_conninfo in the config\n");
		return -1;
	}
	if (!(conn = db_connect("acl", conninfo, NULL, "mqtt2pg-acl")))
		return -1;
	lr->res = PQexec(conn, "SELECT t.slug, d.serial, d.enabled, d.serial || '@' || t.slug FROM tenants t "
			       "LEFT JOIN devices d ON d.tenant_id = t.id ORDER BY t.slug, d.serial");
	if (PQresultStatus(lr->res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "mqtt2pg: reading the registry: %s\n",
			db_error_line(conn, lr->res, err, sizeof(err)));
		PQfinish(conn);
		loaded_registry_clear(lr);
		return -1;
	}
	PQfinish(conn);
	rows = PQntuples(lr->res);
	lr->devices = xcalloc((size_t)rows + 1, sizeof(*lr->devices));
	lr->tenants = xcalloc((size_t)rows + 1, sizeof(*lr->tenants));
	for (int r = 0; r < rows; r++) {
		const char *slug = PQgetvalue(lr->res, r, 0);
		if (lr->reg.tenant_count == 0 || strcmp(lr->tenants[lr->reg.tenant_count - 1], slug) != 0)
			lr->tenants[lr->reg.tenant_count++] = slug;
		if (PQgetisnull(lr->res, r, 1))
			continue; /* a tenant without devices */
		lr->devices[lr->reg.device_count++] = (struct acl_device){
			.serial = PQgetvalue(lr->res, r, 1),
			.tenant = slug,
			.enabled = PQgetvalue(lr->res, r, 2)[0] == 't',
			.username = qualified ? PQgetvalue(lr->res, r, 3) : NULL,
		};
	}
	lr->reg.devices = lr->devices;
	lr->reg.tenants = lr->tenants;
	return 0;
}

/* Writes text to path through a temporary file and rename, so a broker reloading never reads half a file. */
static int write_file_atomically(const char *path, const char *text)
{
	char *tmp = format("%s.XXXXXX", path);
	size_t len = strlen(text), done = 0;
	int fd = mkstemp(tmp), rc = -1;

	if (fd < 0) {
		fprintf(stderr, "mqtt2pg: cannot create %s: %s\n", tmp, strerror(errno));
		free(tmp);
		return -1;
	}
	while (done < len) {
		ssize_t n = write(fd, text + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "mqtt2pg: cannot write %s: %s\n", tmp, strerror(errno));
			goto out;
		}
		done += (size_t)n;
	}
	/* No secrets in it, and the broker (another user) must read it. */
	if (fchmod(fd, 0644) < 0 || fsync(fd) < 0) {
		fprintf(stderr, "mqtt2pg: cannot finish %s: %s\n", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		fprintf(stderr, "mqtt2pg: cannot close %s: %s\n", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		fprintf(stderr, "mqtt2pg: cannot rename %s to %s: %s\n", tmp, path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		unlink(tmp);
	free(tmp);
	return rc;
}

/* Reads a whole file; returns an owned buffer (NUL-terminated, length in *len) or NULL after printing why. */
static char *read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n;

	*len = 0;
	if (!fp) {
		fprintf(stderr, "mqtt2pg: cannot open %s: %s\n", path, strerror(errno));
		return NULL;
	}
	do {
		if (*len + 4096 + 1 > cap) {
			cap = (*len + 4096 + 1) * 2;
			buf = xrealloc(buf, cap);
		}
		n = fread(buf + *len, 1, cap - *len - 1, fp);
		*len += n;
	} while (n > 0);
	if (ferror(fp)) {
		fprintf(stderr, "mqtt2pg: cannot read %s: %s\n", path, strerror(errno));
		fclose(fp);
		free(buf);
		return NULL;
	}
	fclose(fp);
	buf[*len] = '\0';
	return buf;
}

struct acl_args {
	const char *format, *bridge_user, *topic_prefix, *output, *file, *username;
	bool qualified; /* --username serial@tenant */
};

/* Parses `VERB [FILE] [--opt value]...`; returns false (after printing usage) on anything unexpected. */
static bool parse_args(int argc, char **argv, struct acl_args *a)
{
	*a = (struct acl_args){
		.format = "mosquitto", .bridge_user = "mqtt2pg", .topic_prefix = "solar", .username = "serial"
	};
	for (int i = 1; i < argc; i++) {
		const char **slot = NULL;
		if (strcmp(argv[i], "--format") == 0)
			slot = &a->format;
		else if (strcmp(argv[i], "--bridge-user") == 0)
			slot = &a->bridge_user;
		else if (strcmp(argv[i], "--topic-prefix") == 0)
			slot = &a->topic_prefix;
		else if (strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0)
			slot = &a->output;
		else if (strcmp(argv[i], "--username") == 0)
			slot = &a->username;
		if (slot && i + 1 < argc) {
			*slot = argv[++i];
		} else if (!slot && argv[i][0] != '-' && !a->file) {
			a->file = argv[i];
		} else {
			fprintf(stderr, "mqtt2pg: acl: unexpected '%s'\nusage: mqtt2pg " ACL_USAGE "\n",
				argv[i]);
			return false;
		}
	}
	a->qualified = strcmp(a->username, "serial@tenant") == 0;
	if (!a->qualified && strcmp(a->username, "serial") != 0) {
		fprintf(stderr, "mqtt2pg: acl: --username is serial or serial@tenant, not '%s'\n",
			a->username);
		return false;
	}
	return true;
}

static int acl_export_command(const char *conninfo, const struct acl_args *a)
{
	struct acl_policy pol = { .topic_prefix = a->topic_prefix, .bridge_user = a->bridge_user };
	struct loaded_registry lr;
	enum acl_format fmt;
	char err[512], *text = NULL;
	int rc = 1;

	if (strcmp(a->format, "mosquitto") == 0) {
		fmt = ACL_FORMAT_MOSQUITTO;
	} else if (strcmp(a->format, "dynsec") == 0) {
		fmt = ACL_FORMAT_DYNSEC;
	} else {
		fprintf(stderr, "mqtt2pg: acl export: unknown format '%s' (mosquitto or dynsec)\n",
			a->format);
		return 2;
	}
	if (a->file) {
		fprintf(stderr, "mqtt2pg: acl export: unexpected '%s' (write to a file with -o FILE)\n",
			a->file);
		return 2;
	}
	if (load_registry(conninfo, a->qualified, &lr) < 0)
		return 1;
	if (acl_export(&lr.reg, &pol, fmt, &text, err, sizeof(err)) < 0) {
		fprintf(stderr, "mqtt2pg: acl export: %s\n", err);
		goto out;
	}
	if (a->output) {
		if (write_file_atomically(a->output, text) < 0)
			goto out;
	} else if (fputs(text, stdout) == EOF || fflush(stdout) == EOF) {
		fprintf(stderr, "mqtt2pg: acl export: cannot write to standard output: %s\n",
			strerror(errno));
		goto out;
	}
	rc = 0;
out:
	free(text);
	loaded_registry_clear(&lr);
	return rc;
}

static int acl_check_command(const char *conninfo, const struct acl_args *a)
{
	struct acl_policy pol = { .topic_prefix = a->topic_prefix, .bridge_user = a->bridge_user };
	struct loaded_registry lr;
	struct acl_finding *findings = NULL;
	struct acl_file *f = NULL;
	size_t len, count, enabled = 0;
	char *text, *path;

	if (!a->file) {
		fprintf(stderr, "usage: mqtt2pg " ACL_USAGE "\n");
		return 2;
	}
	if (!safe_prefix(pol.topic_prefix) || !pol.bridge_user[0]) {
		fprintf(stderr, "mqtt2pg: acl check: unusable --topic-prefix or --bridge-user\n");
		return 2;
	}
	if (!(text = read_file(a->file, &len)))
		return 2;
	if (load_registry(conninfo, a->qualified, &lr) < 0) {
		free(text);
		return 2;
	}
	f = acl_file_parse(text, len);
	free(text);
	count = acl_lint(f, &lr.reg, &pol, &findings);
	path = printable(a->file);
	for (size_t i = 0; i < count; i++) {
		if (findings[i].line)
			printf("%s:%u: %s: %s\n", path, findings[i].line,
			       acl_finding_kind_name(findings[i].kind), findings[i].message);
		else
			printf("%s: %s: %s\n", path, acl_finding_kind_name(findings[i].kind),
			       findings[i].message);
	}
	for (size_t i = 0; i < lr.reg.device_count; i++)
		enabled += lr.reg.devices[i].enabled;
	fflush(stdout);
	fprintf(stderr,
		"mqtt2pg: acl check %s: %zu finding(s) in %zu rule(s), against %zu enabled device(s) of %zu "
		"tenant(s)\n",
		path, count, f->rule_count, enabled, lr.reg.tenant_count);
	free(path);
	acl_findings_free(findings, count);
	acl_file_free(f);
	loaded_registry_clear(&lr);
	return count ? 1 : 0;
}

int acl_command(const char *conninfo, int argc, char **argv)
{
	const char *verb = argc > 0 ? argv[0] : "";
	struct acl_args a;

	if (strcmp(verb, "export") != 0 && strcmp(verb, "check") != 0) {
		fprintf(stderr, "usage: mqtt2pg " ACL_USAGE "\n");
		return 2;
	}
	if (!parse_args(argc, argv, &a))
		return 2;
	return verb[0] == 'e' ? acl_export_command(conninfo, &a) : acl_check_command(conninfo, &a);
}
