/* SPDX-License-Identifier: Apache-2.0 */
/*
 * json_arena: a per-thread bump allocator for cJSON. Parsing one ~170-byte envelope makes cJSON allocate a
 * dozen small blocks (a node per value, a copy of every key and string) and free them all again at
 * cJSON_Delete: between json_arena_begin and json_arena_end on a thread, those come from a reused block
 * instead of malloc/free. Outside that bracket, and past the block's size, cJSON allocates with malloc as
 * before, so the hooks are safe for every other user of cJSON in the process (the ACL export).
 */
#ifndef MQTT2PG_JSON_ARENA_H
#define MQTT2PG_JSON_ARENA_H

/* Starts serving this thread's cJSON allocations from its arena (installs the hooks once per process). */
void json_arena_begin(void);

/*
 * Installs the arena's hooks into cJSON (process-wide). json_arena_begin does it on first use; main calls it
 * first, before any thread starts, so that no thread is inside cJSON while its hooks change.
 */
void json_arena_init(void);

/* Stops, and forgets everything allocated since json_arena_begin: call it after cJSON_Delete. */
void json_arena_end(void);

#endif
