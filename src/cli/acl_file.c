// SPDX-License-Identifier: Apache-2.0
/*
 * acl_file: the acl_file parser (as Mosquitto 2.0 reads it, mistakes included) and Mosquitto's access
 * decision over the parsed rules (see acl_file.h).
 *
 * Whether a compiled filter matches a topic depends only on, level by level, which of the file's literals
 * the topic's level equals (or none of them: a "fresh" value) and on the topic's length; the matcher below is
 * a small NFA over tokens so that the lint can also ask "can any longer topic still match?" and prune its
 * walk (acl_lint.c). This is exact for `topic` rules and %u (string substitution, as Mosquitto does), and
 * errs on the side of a match for %c.
 */
#include "cli/acl_file.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "util/text.h"
#include "util/topic.h"
#include "util/xalloc.h"

#define ACL_TOPIC_MAX_LEVELS 200 /* Mosquitto's TOPIC_HIERARCHY_LIMIT */

/* ------------------------------------------------------------------------------------------------------ */
/* Topic filters as tokens                                                                                 */
/* ------------------------------------------------------------------------------------------------------ */

static void filter_add(struct acl_filter *f, enum acl_tok_kind kind, const char *text, size_t len)
{
	f->toks = xrealloc(f->toks, (f->n + 1) * sizeof(*f->toks));
	f->toks[f->n].kind = kind;
	f->toks[f->n].text = kind == ACL_TOK_LIT ? xstrndup(text, len) : NULL;
	f->toks[f->n].len = kind == ACL_TOK_LIT ? len : 0;
	f->n++;
}

void acl_filter_clear(struct acl_filter *f)
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
	struct xbuf sb = { 0 };
	const char *p = text, *hit;

	xbuf_printf(&sb, "%s", "");
	while ((hit = strstr(p, "%u")) != NULL) {
		xbuf_printf(&sb, "%.*s%s", (int)(hit - p), p, username);
		p = hit + 2;
	}
	xbuf_printf(&sb, "%s", p);
	return sb.buf;
}

/*
 * Compiles filter text. For a pattern (username non-NULL), %u is substituted first, and a level holding %c
 * becomes ANY STAR: the client picks its id, which may contain '/', so it stands for one or more levels.
 */
void acl_filter_compile(struct acl_filter *out, const char *text, bool pattern, const char *username)
{
	char *expanded = pattern && username ? substitute_user(text, username) : NULL;
	const char *s = expanded ? expanded : text;

	out->toks = NULL;
	out->n = 0;
	for (;;) {
		const char *slash = strchr(s, '/');
		size_t len = slash ? (size_t)(slash - s) : strlen(s);

		if (len == 1 && s[0] == '+') {
			filter_add(out, ACL_TOK_ANY, NULL, 0);
		} else if (len == 1 && s[0] == '#') {
			filter_add(out, ACL_TOK_STAR, NULL, 0);
		} else if (pattern && memmem(s, len, "%c", 2)) {
			filter_add(out, ACL_TOK_ANY, NULL, 0);
			filter_add(out, ACL_TOK_STAR, NULL, 0);
		} else {
			filter_add(out, ACL_TOK_LIT, s, len);
		}
		if (!slash)
			break;
		s = slash + 1;
	}
	free(expanded);
}

static bool tok_is_dollar(const struct acl_tok *t)
{
	return t->kind == ACL_TOK_LIT && t->len > 0 && t->text[0] == '$';
}

static bool tok_matches_level(const struct acl_tok *t, const struct acl_level *l)
{
	switch (t->kind) {
	case ACL_TOK_LIT:
		return l->text && l->len == t->len && memcmp(l->text, t->text, t->len) == 0;
	case ACL_TOK_ANY:
	case ACL_TOK_STAR:
		return true;
	}
	return false;
}

/* Adds the positions reachable without consuming a level: a STAR may match nothing. */
static void nfa_close(const struct acl_filter *f, bool *set)
{
	for (size_t i = 0; i < f->n; i++)
		if (set[i] && f->toks[i].kind == ACL_TOK_STAR)
			set[i + 1] = true;
}

/*
 * Runs f over levels[0..n): on return set[i] (f->n + 1 entries) says "tokens [0, i) can have matched exactly
 * these levels". Returns whether any position is still alive (some longer topic might still match).
 */
bool acl_filter_run(const struct acl_filter *f, const struct acl_level *levels, size_t n, bool *set)
{
	bool stack_next[64], *next = f->n + 1 <= 64 ? stack_next : xmalloc(f->n + 1);
	bool alive = true;

	memset(set, 0, f->n + 1);
	set[0] = true;
	nfa_close(f, set);
	/* A topic starting with '$' is matched only by a filter whose first level is literal. */
	if (n > 0 && levels[0].text && levels[0].len > 0 && levels[0].text[0] == '$' &&
	    (f->n == 0 || f->toks[0].kind != ACL_TOK_LIT)) {
		set[0] = false;
		alive = false;
	}
	for (size_t k = 0; k < n && alive; k++) {
		memset(next, 0, f->n + 1);
		for (size_t i = 0; i < f->n; i++) {
			if (!set[i] || !tok_matches_level(&f->toks[i], &levels[k]))
				continue;
			if (f->toks[i].kind == ACL_TOK_STAR)
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

static bool filter_matches(const struct acl_filter *f, const struct acl_level *levels, size_t n)
{
	bool stack_set[64], *set = f->n + 1 <= 64 ? stack_set : xmalloc(f->n + 1);
	bool match = acl_filter_run(f, levels, n, set) && set[f->n];

	if (set != stack_set)
		free(set);
	return match;
}

/* Splits a topic name into levels (borrowing topic). Returns the count; *out is owned. */
size_t acl_topic_split(const char *topic, struct acl_level **out)
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
static bool overlap_from(const struct acl_filter *a, const struct acl_filter *b, size_t i, size_t j,
			 unsigned char *memo)
{
	unsigned char *m = &memo[i * (b->n + 1) + j];
	const struct acl_tok *ta, *tb;
	bool result = false;

	if (*m)
		return *m == 1;
	if (i == a->n && j == b->n) {
		result = true;
	} else if (i < a->n && a->toks[i].kind == ACL_TOK_STAR && overlap_from(a, b, i + 1, j, memo)) {
		result = true;
	} else if (j < b->n && b->toks[j].kind == ACL_TOK_STAR && overlap_from(a, b, i, j + 1, memo)) {
		result = true;
	} else if (i < a->n && j < b->n) {
		/* Both consume the same level; a STAR stays where it is. Both staying gains nothing. */
		ta = &a->toks[i];
		tb = &b->toks[j];
		if (!(ta->kind == ACL_TOK_STAR && tb->kind == ACL_TOK_STAR) &&
		    !(ta->kind == ACL_TOK_LIT && tb->kind == ACL_TOK_LIT &&
		      (ta->len != tb->len || memcmp(ta->text, tb->text, ta->len) != 0)))
			result = overlap_from(a, b, ta->kind == ACL_TOK_STAR ? i : i + 1,
					      tb->kind == ACL_TOK_STAR ? j : j + 1, memo);
	}
	*m = result ? 1 : 2;
	return result;
}

bool acl_filter_intersects(const struct acl_filter *a, const struct acl_filter *b)
{
	unsigned char *memo;
	bool result;

	if (a->n == 0 || b->n == 0)
		return false;
	/* A '$' topic needs a literal first level in both. */
	if ((tok_is_dollar(&a->toks[0]) || tok_is_dollar(&b->toks[0])) &&
	    (a->toks[0].kind != ACL_TOK_LIT || b->toks[0].kind != ACL_TOK_LIT))
		return false;
	memo = xcalloc((a->n + 1) * (b->n + 1), 1);
	result = overlap_from(a, b, 0, 0, memo);
	free(memo);
	return result;
}

bool acl_filters_overlap(const char *a, const char *b)
{
	struct acl_filter fa, fb;
	bool result;

	if (!acl_filter_valid(a) || !acl_filter_valid(b))
		return false;
	acl_filter_compile(&fa, a, false, NULL);
	acl_filter_compile(&fb, b, false, NULL);
	result = acl_filter_intersects(&fa, &fb);
	acl_filter_clear(&fa);
	acl_filter_clear(&fb);
	return result;
}

/* Does outer (a valid filter: STAR only last) match every topic inner matches, from tokens i and j on? */
static bool covers_from(const struct acl_filter *outer, const struct acl_filter *inner, size_t i, size_t j)
{
	for (;; i++, j++) {
		if (i < outer->n && outer->toks[i].kind == ACL_TOK_STAR)
			return true;
		if (j == inner->n)
			return i == outer->n;
		if (i == outer->n || inner->toks[j].kind == ACL_TOK_STAR)
			return false;
		if (outer->toks[i].kind == ACL_TOK_ANY)
			continue;
		if (inner->toks[j].kind != ACL_TOK_LIT || inner->toks[j].len != outer->toks[i].len ||
		    memcmp(inner->toks[j].text, outer->toks[i].text, outer->toks[i].len) != 0)
			return false;
	}
}

bool acl_filter_covers(const char *outer, const char *inner)
{
	struct acl_filter fo, fi;
	bool result;

	if (!acl_filter_valid(outer) || !acl_filter_valid(inner))
		return false;
	acl_filter_compile(&fo, outer, false, NULL);
	acl_filter_compile(&fi, inner, false, NULL);
	/* inner's '$' topics are matched by outer only if outer starts with a literal. */
	if (tok_is_dollar(&fi.toks[0]) && fo.toks[0].kind != ACL_TOK_LIT)
		result = false;
	else
		result = covers_from(&fo, &fi, 0, 0);
	acl_filter_clear(&fo);
	acl_filter_clear(&fi);
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
			  xasprintf("'%s' has no topic: mosquitto refuses to start",
				    pattern ? "pattern" : "topic"));
		return;
	}
	rest = strtok_r(NULL, "", &save);
	if (rest) {
		filter = trim_blanks(rest);
		if (!parse_access(access_word, &access)) {
			shown = text_escape_dup(access_word);
			add_error(
				f, line,
				xasprintf(
					"invalid access type '%s' (read, write, readwrite or deny): mosquitto refuses "
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
			shown = text_escape_dup(text);
			add_error(
				f, line,
				xasprintf(
					"'%s' has no topic: mosquitto reads it as readwrite access to the topic "
					"named '%s'",
					shown, filter));
			free(shown);
		}
	}
	if (!acl_filter_valid(filter)) {
		shown = text_escape_dup(filter);
		add_error(f, line, xasprintf("invalid topic filter '%s': mosquitto refuses to start", shown));
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
			add_error(f, line, xasprintf("'user' without a name: mosquitto refuses to start"));
		} else {
			free(*current_user);
			*current_user = xstrdup(name);
			f->users = xrealloc(f->users, (f->user_count + 1) * sizeof(*f->users));
			f->users[f->user_count].line = line;
			f->users[f->user_count].name = xstrdup(name);
			f->user_count++;
		}
	} else {
		shown = text_escape_dup(text);
		add_error(
			f, line,
			xasprintf(
				"invalid line '%s' (a comment needs '#' in the first column; words are separated "
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

static void ruleset_add(struct acl_crule **list, size_t *count, const struct acl_rule *r,
			const char *username, size_t *max_tokens)
{
	struct acl_crule *c;

	*list = xrealloc(*list, (*count + 1) * sizeof(**list));
	c = &(*list)[(*count)++];
	c->rule = r;
	c->client = r->pattern && strstr(r->filter, "%c") != NULL;
	acl_filter_compile(&c->f, r->filter, r->pattern, username);
	if (c->f.n > *max_tokens)
		*max_tokens = c->f.n;
}

static int compare_rules_by_user(const void *a, const void *b)
{
	const struct acl_rule *x = *(const struct acl_rule *const *)a,
			      *y = *(const struct acl_rule *const *)b;
	int c = strcmp(x->user, y->user);

	return c ? c : (x->line > y->line) - (x->line < y->line);
}

void acl_rule_index_build(struct acl_rule_index *ix, const struct acl_file *f)
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

void acl_rule_index_clear(struct acl_rule_index *ix)
{
	free(ix->by_user);
	free(ix->patterns);
	memset(ix, 0, sizeof(*ix));
}

void acl_ruleset_build(struct acl_ruleset *rs, const struct acl_file *f, const struct acl_rule_index *ix,
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

void acl_ruleset_clear(struct acl_ruleset *rs)
{
	for (size_t i = 0; i < rs->user_count; i++)
		acl_filter_clear(&rs->user_rules[i].f);
	for (size_t i = 0; i < rs->pattern_count; i++)
		acl_filter_clear(&rs->patterns[i].f);
	free(rs->user_rules);
	free(rs->patterns);
	memset(rs, 0, sizeof(*rs));
}

/* First deny, then grant, within one list (Mosquitto puts deny rules at the front of each list). */
static bool decide_list(const struct acl_crule *list, size_t count, const struct acl_level *levels, size_t n,
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

struct acl_decision acl_ruleset_decide(const struct acl_ruleset *rs, const struct acl_level *levels, size_t n,
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
	struct acl_ruleset rs;
	struct acl_level *levels;
	size_t n;
	struct acl_decision d = { .allowed = false, .line = 0 };
	struct acl_rule_index ix;

	if (!topic || !topic[0] || strpbrk(topic, "+#"))
		return d;
	acl_rule_index_build(&ix, f);
	acl_ruleset_build(&rs, f, &ix, username);
	n = acl_topic_split(topic, &levels);
	d = acl_ruleset_decide(&rs, levels, n, access);
	free(levels);
	acl_ruleset_clear(&rs);
	acl_rule_index_clear(&ix);
	return d;
}
