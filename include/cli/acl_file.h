/* SPDX-License-Identifier: Apache-2.0 */
/*
 * acl_file: a Mosquitto 2.0 acl_file read the way the broker reads it, and the broker's access decision
 * replayed over it (deny rules first, then the user's grants, then patterns; `topic` without an access word
 * is readwrite). Pure: no database, no files. The lint (acl_lint.h) asks this decision of every class of
 * topic; `mqtt2pg acl` (acl.h) is the command around both.
 *
 * A filter is compiled into tokens LIT / ANY / STAR. A pattern level holding %c, which the client chooses
 * and which may contain '/', becomes ANY STAR: one or more levels of anything, something an MQTT filter
 * cannot say, which is why the decision runs on tokens rather than through topic.h's matcher. The plain
 * questions (is this a valid filter, does it match this topic) are answered by topic.h.
 */
#ifndef MQTT2PG_ACL_FILE_H
#define MQTT2PG_ACL_FILE_H

#include <stdbool.h>
#include <stddef.h>

/* ---- MQTT topic filters (pure) ---- */

/* True if filter is a valid MQTT subscription filter, as Mosquitto checks ACL topics: non-empty, '+' and '#'
 * only as a whole level, '#' only last. */
bool acl_filter_valid(const char *filter);

/* True if the topic name (no wildcards) matches filter. MQTT rules: '+' is one level, '#' any number of levels
 * including none ("a/#" matches "a"), and a topic starting with '$' is matched only by a filter whose first
 * level is literal. */
bool acl_topic_matches(const char *filter, const char *topic);

/* True if some topic name matches both filters. */
bool acl_filters_overlap(const char *a, const char *b);

/* True if every topic name that matches inner also matches outer (inner's topics are a subset of outer's). */
bool acl_filter_covers(const char *outer, const char *inner);

/* ---- Mosquitto acl_file ---- */

enum {
	ACL_ACCESS_DENY = 0, /* `topic deny` / `pattern deny` */
	ACL_ACCESS_READ = 1,
	ACL_ACCESS_WRITE = 2,
};

struct acl_rule {
	unsigned line; /* 1-based line in the file */
	bool pattern;  /* a `pattern` line: applies to every client, %u and %c substituted */
	char *user; /* owner of a `topic` line; NULL: anonymous (before any `user` line), and for patterns */
	unsigned access; /* ACL_ACCESS_READ | ACL_ACCESS_WRITE, or ACL_ACCESS_DENY */
	char *filter;
	char *text; /* the line as written, for messages */
};

struct acl_user_line {
	unsigned line;
	char *name;
};

struct acl_syntax_error {
	unsigned line;
	char *message;
};

/* A parsed acl_file: a plain value, everything in it owned. */
struct acl_file {
	struct acl_rule *rules; /* in file order; lines with errors are not rules */
	size_t rule_count;
	struct acl_user_line *users; /* every `user` line */
	size_t user_count;
	struct acl_syntax_error
		*errors; /* lines Mosquitto 2.0 refuses (it would not start), and lines it reads
					    differently than they look */
	size_t error_count;
};

/* Parses len bytes of acl_file text the way Mosquitto 2.0 does: '#' in the first column is a comment, words
 * are separated by spaces only (a tab is part of the word), `user NAME`, `topic [read|write|readwrite|deny]
 * FILTER`, `pattern [...] FILTER`. Never fails: problems are recorded in ->errors. Returns an owned file. */
struct acl_file *acl_file_parse(const char *text, size_t len);

/* Frees f and everything in it; NULL is a no-op. */
void acl_file_free(struct acl_file *f);

struct acl_decision {
	bool allowed;
	unsigned line; /* the rule that decided (granted or denied); 0: no rule matched, denied by default */
};

/* Mosquitto 2.0's decision for a client with username (NULL: anonymous) asking access (ACL_ACCESS_READ or
 * ACL_ACCESS_WRITE) to topic: the user's deny rules, then its grants, then deny patterns, then patterns.
 * A %c level in a pattern matches any levels (the client picks its id); deny patterns with %c are skipped
 * (a client picks an id they do not match). */
struct acl_decision acl_decide(const struct acl_file *f, const char *username, const char *topic,
			       unsigned access);

/* ---- Compiled rules: the decision's machinery, shared with the lint ---- */

enum acl_tok_kind {
	ACL_TOK_LIT,  /* this exact level */
	ACL_TOK_ANY,  /* '+': any one level */
	ACL_TOK_STAR, /* '#' (or the tail of a %c level): any number of levels, including none */
};

struct acl_tok {
	enum acl_tok_kind kind;
	char *text; /* owned, ACL_TOK_LIT only */
	size_t len;
};

/* A compiled filter: a plain value, its tokens owned. */
struct acl_filter {
	struct acl_tok *toks;
	size_t n;
};

/* One level of a topic. text NULL is a "fresh" level: equal to no literal of any rule. Borrowed. */
struct acl_level {
	const char *text;
	size_t len;
};

/* Compiles filter text into *out (free with acl_filter_clear). For a pattern with a username, %u is
 * substituted first; a pattern level holding %c becomes ANY STAR. */
void acl_filter_compile(struct acl_filter *out, const char *text, bool pattern, const char *username);
void acl_filter_clear(struct acl_filter *f);

/* Runs f over levels[0..n): set (f->n + 1 entries) says which token positions can have matched exactly these
 * levels. Returns whether any position is still alive (some longer topic might still match). */
bool acl_filter_run(const struct acl_filter *f, const struct acl_level *levels, size_t n, bool *set);

/* True if some topic matches both compiled filters. */
bool acl_filter_intersects(const struct acl_filter *a, const struct acl_filter *b);

/* Splits a topic name into levels borrowing topic. Returns the count; *out is owned. */
size_t acl_topic_split(const char *topic, struct acl_level **out);

/* One rule compiled for one username. Borrows the rule. */
struct acl_crule {
	const struct acl_rule *rule;
	struct acl_filter f;
	bool client; /* a pattern with %c */
};

/* The rules that apply to one username, compiled: its `topic` rules and every pattern that applies. */
struct acl_ruleset {
	struct acl_crule *user_rules;
	size_t user_count;
	struct acl_crule *patterns;
	size_t pattern_count;
	size_t max_tokens;
};

/* The file's rules sorted for lookups by user: `topic` rules by (user, line), then the patterns in order.
 * Borrows the file. */
struct acl_rule_index {
	const struct acl_rule **by_user;
	size_t by_user_count;
	const struct acl_rule **patterns;
	size_t pattern_count;
};

void acl_rule_index_build(struct acl_rule_index *ix, const struct acl_file *f);
void acl_rule_index_clear(struct acl_rule_index *ix);

/* The rules that apply to username (NULL: anonymous), in file order within each list; borrows f and ix. */
void acl_ruleset_build(struct acl_ruleset *rs, const struct acl_file *f, const struct acl_rule_index *ix,
		       const char *username);
void acl_ruleset_clear(struct acl_ruleset *rs);

/* Mosquitto's decision over a compiled rule set for a topic given as levels (acl_decide on a ruleset). */
struct acl_decision acl_ruleset_decide(const struct acl_ruleset *rs, const struct acl_level *levels, size_t n,
				       unsigned access);

#endif
