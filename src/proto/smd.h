/* smd.h - Message.server_message_data: expand the opaque string to {uuid, seconds, nanos}
 * and collapse it back (spec/warp-protocol.md §2.4).
 *
 * The string is base64url (padded or not; standard base64 is accepted too) of a
 * serialized warp.multi_agent.v1.ServerMessageData {1 uuid string, 3 timestamp
 * google.protobuf.Timestamp}; either part may be missing. The capture holds
 * "GgsIyp_TywYQg47ueA==" (a timestamp only, padded).
 *
 * Collapse emits base64url WITH '=' padding (the capture's form), unless the expanded
 * value says it came unpadded (w2a_smd.padded = 0, or "padded": false in JSON), so an
 * expand -> collapse round trip gives back the original string byte for byte.
 *
 * Expansion is only done when it is lossless: the JSON walker leaves a string alone
 * unless re-encoding the decoded fields reproduces the original bytes exactly (so a
 * value with fields we do not know, or a non-canonical encoding, passes through
 * untouched). The C API reports this as w2a_smd.lossless. */
#ifndef W2A_SMD_H
#define W2A_SMD_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

typedef struct w2a_smd {
  char *uuid;        /* heap, NUL-terminated; NULL when absent (proto3: empty) */
  int has_timestamp; /* the timestamp sub-message is present */
  int64_t seconds;
  int32_t nanos;
  int padded;   /* expand: the text carried '=' padding. collapse: emit it */
  int lossless; /* expand: collapse reproduces the input exactly */
} w2a_smd;

/* Decode s (n bytes). 0, or W2A_EINVAL (bad base64 / not a ServerMessageData) with
 * err naming the problem. On success the caller frees with w2a_smd_free. */
int w2a_smd_expand(const char *s, size_t n, w2a_smd *out, w2a_err *err);
void w2a_smd_free(w2a_smd *m);
/* Append the base64url text of m to out (no terminator counted). 0 or W2A_E*. */
int w2a_smd_collapse(const w2a_smd *m, w2a_buf *out, w2a_err *err);

/* JSON form: {"uuid": "...", "seconds": N, "nanos": N} with uuid present when set and
 * seconds+nanos present when the timestamp is; plus "padded": false when the original
 * was unpadded and padding would have shown. Returns a new object, or NULL with err. */
json_object *w2a_smd_to_json(const w2a_smd *m);
/* Parse that form (seconds may also be a decimal string, as proto3 JSON prints int64;
 * unknown keys are an error so nothing is dropped silently). */
int w2a_smd_from_json(json_object *o, w2a_smd *out, w2a_err *err);

/* Rewrite, in place and at any depth, every "server_message_data" (or
 * "serverMessageData") string member of an object into its expanded object, when the
 * expansion is lossless. Returns the number of values rewritten, or W2A_ENOMEM. */
int w2a_smd_expand_json(json_object *tree);
/* The reverse: every such member that is an object becomes the base64url string again
 * (strings are left as they are). Returns the number rewritten, or a negative code with
 * err naming the JSON path of a malformed value. */
int w2a_smd_collapse_json(json_object *tree, w2a_err *err);

#endif
