// SPDX-License-Identifier: Apache-2.0
/*
 * acl_lint: `mqtt2pg acl check`'s reasoning (see acl_lint.h).
 *
 * For one user there are finitely many classes of topics the file can tell apart (acl_file.c: which literal
 * each level equals, or none, and the length). The walk below visits one representative topic of every class
 * inside the route tree <prefix>/<tenant>/<serial>/..., pruning as soon as no grant of the user can match any
 * longer topic, and asks each representative the same decision Mosquitto 2.0 makes. A representative
 * allowed outside the user's own subtree is a finding, attributed to the rule that granted it.
 */
#include "cli/acl_lint.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/text.h"
#include "util/xalloc.h"

#define ACL_WALK_NODE_BUDGET 200000 /* topics visited per user and access before we give up on completeness */
#define ACL_PROBE_LEAF	     "telemetry" /* the default route's last level: what a device must be able to publish */

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
	struct acl_rule_index ix;
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
static const char *other_tenant(const struct lint *lt, const struct acl_ruleset *rs, const char *own)
{
	for (size_t t = 0; t < lt->reg->tenant_count; t++) {
		const char *slug = lt->reg->tenants[t];
		bool named = own && strcmp(slug, own) == 0;
		for (size_t i = 0; i < rs->user_count + rs->pattern_count && !named; i++) {
			const struct acl_filter *fl = i < rs->user_count ?
							      &rs->user_rules[i].f :
							      &rs->patterns[i - rs->user_count].f;
			for (size_t k = 0; k < fl->n && !named; k++)
				named = fl->toks[k].kind == ACL_TOK_LIT &&
					strcmp(fl->toks[k].text, slug) == 0;
		}
		if (!named)
			return slug;
	}
	return NULL;
}

/* The example topic: fresh levels shown as a placeholder (or a real tenant that behaves the same). */
static char *render_topic(const struct lint *lt, const struct acl_ruleset *rs, const struct subject *who,
			  const struct acl_level *levels, size_t n)
{
	struct xbuf sb = { 0 };
	const char *other = other_tenant(lt, rs, who->tenant);

	xbuf_printf(&sb, "%s", "");
	for (size_t k = 0; k < n; k++) {
		const char *sep = k ? "/" : "";
		if (levels[k].text)
			xbuf_printf(&sb, "%s%.*s", sep, (int)levels[k].len, levels[k].text);
		else if (k == lt->prefix_n)
			xbuf_printf(&sb, "%s%s", sep, other ? other : "<other-tenant>");
		else if (k == lt->prefix_n + 1)
			xbuf_printf(&sb, "%s<serial>", sep);
		else
			xbuf_printf(&sb, "%s<any>", sep);
	}
	return sb.buf;
}

static void record_hit(struct lint *lt, const struct acl_ruleset *rs, const struct subject *who,
		       unsigned line, enum acl_finding_kind kind, const struct acl_level *levels, size_t n)
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
	const struct acl_ruleset *rs;
	const struct subject *who;
	unsigned access;
	struct acl_level *topic; /* max_depth levels */
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
		const struct acl_crule *c = i < w->rs->user_count ? &w->rs->user_rules[i] :
								    &w->rs->patterns[i - w->rs->user_count];
		if (!(c->rule->access & w->access))
			continue;
		set = c->f.n + 1 <= 64 ? stack_set : xmalloc(c->f.n + 1);
		alive = acl_filter_run(&c->f, w->topic, depth, set);
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
		const struct acl_crule *c = i < w->rs->user_count ? &w->rs->user_rules[i] :
								    &w->rs->patterns[i - w->rs->user_count];
		set = c->f.n + 1 <= 64 ? stack_set : xmalloc(c->f.n + 1);
		if (acl_filter_run(&c->f, w->topic, depth, set))
			for (size_t k = 0; k < c->f.n; k++)
				if (set[k] && c->f.toks[k].kind == ACL_TOK_LIT) {
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
		struct acl_decision d = acl_ruleset_decide(w->rs, w->topic, depth, w->access);
		if (d.allowed)
			w->visit(w, depth, d);
	}
	if (depth == w->max_depth)
		return;
	if (depth < p) {
		/* Inside the prefix: only the route tree is of interest. */
		w->topic[depth] = (struct acl_level){ .text = w->lt->prefix[depth],
						      .len = strlen(w->lt->prefix[depth]) };
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
		w->topic[depth] = i < count ? (struct acl_level){ .text = lits[i], .len = strlen(lits[i]) } :
					      (struct acl_level){ .text = NULL, .len = 0 };
		if (grant_alive(w, depth + 1))
			walk_node(w, depth + 1);
	}
	free(lits);
}

/* Visits every class of topic in the route tree that the subject may access; w->visit gets the allowed ones. */
static void walk(struct lint *lt, const struct acl_ruleset *rs, const struct subject *who, unsigned access,
		 void (*visit)(struct walk *w, size_t depth, struct acl_decision d))
{
	struct walk w = { .lt = lt, .rs = rs, .who = who, .access = access, .visit = visit };

	w.max_depth = (rs->max_tokens > lt->prefix_n + 2 ? rs->max_tokens : lt->prefix_n + 2) + 1;
	w.topic = xcalloc(w.max_depth, sizeof(*w.topic));
	walk_node(&w, 0);
	free(w.topic);
	if (w.truncated)
		add_finding(lt, 0, ACL_FINDING_UNANALYSED,
			    xasprintf("user '%s': too many distinct topics to analyse %s access completely "
				      "(stopped after %d); simplify its rules",
				      who->username ? who->username : "(anonymous)",
				      access == ACL_ACCESS_WRITE ? "write" : "read", ACL_WALK_NODE_BUDGET));
}

static bool level_is(const struct acl_level *l, const char *s)
{
	return l->text && l->len == strlen(s) && memcmp(l->text, s, l->len) == 0;
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
	return xasprintf("%s/%s/%s/%s", pol->topic_prefix, dev->tenant, dev->serial, ACL_PROBE_LEAF);
}

/* The device whose broker username is name (by_serial is sorted by username). */
static const struct acl_device *find_device(const struct lint *lt, const char *name)
{
	struct acl_device key = { .serial = name };
	const struct acl_device *keyp = &key, **found;

	found = bsearch(&keyp, lt->by_serial, lt->reg->device_count, sizeof(*lt->by_serial),
			acl_device_compare_user);
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
		name = text_escape_dup(u->name);
		if (dev)
			add_finding(
				lt, u->line, ACL_FINDING_DISABLED_DEVICE,
				xasprintf(
					"user '%s' is a disabled device (tenant %s): remove its rules and its "
					"password",
					name, dev->tenant));
		else
			add_finding(
				lt, u->line, ACL_FINDING_UNKNOWN_USER,
				xasprintf("user '%s' is neither a registered device nor the bridge user '%s'",
					  name, lt->pol->bridge_user));
		free(name);
	}
}

/* Rule shapes: anonymous rules, and write grants with a wildcard at the tenant level or above. */
static void lint_rules(struct lint *lt)
{
	struct acl_filter tree;
	char *tree_text = xasprintf("%s/+/+/#", lt->pol->topic_prefix);

	acl_filter_compile(&tree, tree_text, false, NULL);
	for (size_t i = 0; i < lt->f->rule_count; i++) {
		const struct acl_rule *r = &lt->f->rules[i];
		char *text = text_escape_dup(r->text);
		struct acl_filter fl;
		size_t first_wild = SIZE_MAX;

		if (!r->pattern && !r->user)
			add_finding(
				lt, r->line, ACL_FINDING_ANONYMOUS,
				xasprintf(
					"'%s' applies to anonymous clients (it comes before any 'user' line)",
					text));
		if (r->access & ACL_ACCESS_WRITE) {
			/* %u stands for one literal level here: what matters is where the wildcards are. */
			acl_filter_compile(&fl, r->filter, r->pattern, r->pattern ? "%u" : NULL);
			for (size_t k = 0; k < fl.n && first_wild == SIZE_MAX; k++)
				if (fl.toks[k].kind != ACL_TOK_LIT)
					first_wild = k;
			if (first_wild <= lt->prefix_n && acl_filter_intersects(&fl, &tree))
				add_finding(
					lt, r->line, ACL_FINDING_WILDCARD_WRITE,
					xasprintf(
						"'%s' grants write with a wildcard at the tenant level or above: it "
						"spans every tenant's tree %s",
						text, tree_text));
			acl_filter_clear(&fl);
		}
		free(text);
	}
	acl_filter_clear(&tree);
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
	struct acl_ruleset rs;

	for (size_t i = 0; i < reg->device_count; i++) {
		const struct acl_device *dev = &reg->devices[i];
		struct subject *who = &subjects[i];
		struct acl_decision d;
		struct acl_level *levels;
		char *probe;
		size_t n;

		if (!dev->enabled || strcmp(acl_device_user(dev), lt->pol->bridge_user) == 0)
			continue;
		enabled++;
		*who = (struct subject){ .username = acl_device_user(dev),
					 .tenant = dev->tenant,
					 .serial = dev->serial };
		acl_ruleset_build(&rs, lt->f, &lt->ix, acl_device_user(dev));
		walk(lt, &rs, who, ACL_ACCESS_WRITE, visit_device_write);
		walk(lt, &rs, who, ACL_ACCESS_READ, visit_device_read);
		probe = probe_topic(lt->pol, dev);
		n = acl_topic_split(probe, &levels);
		d = acl_ruleset_decide(&rs, levels, n, ACL_ACCESS_WRITE);
		if (!d.allowed) {
			char *why = d.line ? xasprintf("line %u denies it", d.line) :
					     xstrdup("no rule grants it");
			add_finding(lt, first_user_line(lt, acl_device_user(dev)), ACL_FINDING_NO_WRITE_RULE,
				    xasprintf("device %s (tenant %s) cannot publish %s: %s", dev->serial,
					      dev->tenant, probe, why));
			free(why);
		}
		free(levels);
		free(probe);
		acl_ruleset_clear(&rs);
	}

	struct subject *bridge = &subjects[reg->device_count];
	*bridge = (struct subject){ .username = lt->pol->bridge_user };
	acl_ruleset_build(&rs, lt->f, &lt->ix, lt->pol->bridge_user);
	walk(lt, &rs, bridge, ACL_ACCESS_WRITE, visit_bridge_write);
	for (size_t i = 0; i < reg->device_count; i++) {
		const struct acl_device *dev = &reg->devices[i];
		struct acl_level *levels;
		char *probe;
		size_t n;

		if (!dev->enabled || strcmp(acl_device_user(dev), lt->pol->bridge_user) == 0)
			continue;
		probe = probe_topic(lt->pol, dev);
		n = acl_topic_split(probe, &levels);
		if (!acl_ruleset_decide(&rs, levels, n, ACL_ACCESS_READ).allowed && unreadable++ == 0)
			unreadable_example = xstrdup(probe);
		free(levels);
		free(probe);
	}
	if (unreadable) {
		char *user = text_escape_dup(lt->pol->bridge_user);
		add_finding(
			lt, first_user_line(lt, lt->pol->bridge_user), ACL_FINDING_BRIDGE_CANNOT_READ,
			xasprintf("the bridge user '%s' cannot read %s (%zu of %zu enabled device(s)): their "
				  "readings would never reach the bridge",
				  user, unreadable_example, unreadable, enabled));
		free(user);
	}
	free(unreadable_example);
	acl_ruleset_clear(&rs);

	/* The walks' hits become findings; the subjects they point to die here. */
	for (size_t i = 0; i < lt->hit_count; i++) {
		struct hit *h = &lt->hits[i];
		const struct acl_rule *r = rule_at(lt->f, h->line);
		char *text = text_escape_dup(r ? r->text : "?");
		char *more = h->subjects > 1 ? xasprintf(" (and %zu more device(s))", h->subjects - 1) :
					       xstrdup("");
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
			message = xasprintf(
				"'%s' lets device %s (tenant %s) publish into another tenant's tree, e.g. %s",
				text, h->username, h->tenant, h->witness);
			break;
		case ACL_FINDING_CROSS_DEVICE_WRITE:
			message = xasprintf(
				"'%s' lets device %s publish into another device's subtree of tenant %s, "
				"e.g. %s",
				text, h->username, h->tenant, h->witness);
			break;
		case ACL_FINDING_PATTERN_WRITE:
			message = xasprintf(
				"'%s' applies to every user and does not confine each device to its own "
				"subtree: %zu device(s) may publish outside it, e.g. %s (tenant %s) to %s",
				text, h->subjects, h->username, h->tenant, h->witness);
			break;
		case ACL_FINDING_CROSS_TENANT_READ:
			message = xasprintf(
				"'%s' lets device %s (tenant %s)%s read another tenant's tree, e.g. %s", text,
				h->username, h->tenant, more, h->witness);
			break;
		case ACL_FINDING_BRIDGE_WRITE:
			message = xasprintf(
				"'%s' lets the bridge user '%s' publish into the route tree, e.g. %s (it "
				"only needs to read)",
				text, h->username, h->witness);
			break;
		default:
			message = xasprintf("'%s': e.g. %s", text, h->witness);
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
	struct acl_level *levels;
	size_t n = acl_topic_split(prefix, &levels);

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
	acl_rule_index_build(&lt.ix, f);
	lt.by_serial = xcalloc(reg->device_count + 1, sizeof(*lt.by_serial));
	for (size_t i = 0; i < reg->device_count; i++)
		lt.by_serial[i] = &reg->devices[i];
	if (reg->device_count > 1)
		qsort(lt.by_serial, reg->device_count, sizeof(*lt.by_serial), acl_device_compare_user);
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
	acl_rule_index_clear(&lt.ix);
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
