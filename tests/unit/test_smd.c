/* test_smd.c - server_message_data expand/collapse: the capture's value, both paddings,
 * each part alone, bad input, values we must leave alone, and the JSON tree walkers. */
#include <stdlib.h>
#include <string.h>

#include "proto/smd.h"
#include "t.h"

static const char cap_smd[] = "GgsIyp_TywYQg47ueA=="; /* from turn1-response.sse */

static void round_trip(const char *s, int lossless) {
  w2a_smd m;
  w2a_err err = {0};
  T_EQ_INT(w2a_smd_expand(s, strlen(s), &m, &err), 0);
  T_EQ_INT(m.lossless, lossless);
  w2a_buf b;
  w2a_buf_init(&b, 0);
  T_EQ_INT(w2a_smd_collapse(&m, &b, &err), 0);
  if (lossless) T_EQ_STR(b.data, s);
  w2a_buf_free(&b);
  w2a_smd_free(&m);
}

static void test_capture_value(void) {
  w2a_smd m;
  w2a_err err = {0};
  T_EQ_INT(w2a_smd_expand(cap_smd, strlen(cap_smd), &m, &err), 0);
  T_CHECK(m.uuid == NULL);
  T_EQ_INT(m.has_timestamp, 1);
  T_EQ_INT(m.seconds, 1769263050);
  T_EQ_INT(m.nanos, 253462275);
  T_EQ_INT(m.padded, 1);
  T_EQ_INT(m.lossless, 1);
  w2a_smd_free(&m);
  round_trip(cap_smd, 1);
  round_trip("GgsIyp_TywYQg47ueA", 1); /* unpadded form comes back unpadded */
  T_EQ_INT(w2a_smd_expand("GgsIyp_TywYQg47ueA", 18, &m, &err), 0);
  T_EQ_INT(m.padded, 0);
  w2a_smd_free(&m);
  /* standard alphabet decodes but is not what collapse would write: not lossless */
  round_trip("GgsIyp/TywYQg47ueA==", 0);
  /* the Python proxies' form (always padded): fine too */
  round_trip("", 1);
}

static void test_parts(void) {
  w2a_err err = {0};
  w2a_buf b;
  w2a_buf_init(&b, 0);
  const char *uuid = "1516457c-4c0e-4e26-bf13-dadf51142833";
  struct {
    const char *uuid;
    int ts;
    int64_t s;
    int32_t n;
    int padded;
  } cases[] = {
      {uuid, 0, 0, 0, 1},
      {uuid, 0, 0, 0, 0},
      {NULL, 1, 1769263050, 5, 1},
      {NULL, 1, 0, 0, 1},
      {uuid, 1, -62135596800, 999999999, 0},
      {NULL, 0, 0, 0, 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    w2a_smd m = {.uuid = (char *)cases[i].uuid,
                 .has_timestamp = cases[i].ts,
                 .seconds = cases[i].s,
                 .nanos = cases[i].n,
                 .padded = cases[i].padded};
    w2a_buf_reset(&b);
    T_EQ_INT(w2a_smd_collapse(&m, &b, &err), 0);
    w2a_smd x;
    T_EQ_INT(w2a_smd_expand(b.data, b.len, &x, &err), 0);
    T_EQ_STR(x.uuid ? x.uuid : "", cases[i].uuid ? cases[i].uuid : "");
    T_EQ_INT(x.has_timestamp, cases[i].ts);
    T_EQ_INT(x.seconds, cases[i].s);
    T_EQ_INT(x.nanos, cases[i].n);
    T_EQ_INT(x.lossless, 1);
    round_trip(b.data, 1);
    /* and through JSON */
    json_object *j = w2a_smd_to_json(&x);
    T_CHECK(j != NULL);
    T_EQ_INT(json_object_object_get_ex(j, "uuid", NULL), cases[i].uuid != NULL);
    T_EQ_INT(json_object_object_get_ex(j, "seconds", NULL), cases[i].ts);
    w2a_smd y;
    T_EQ_INT(w2a_smd_from_json(j, &y, &err), 0);
    w2a_buf c;
    w2a_buf_init(&c, 0);
    T_EQ_INT(w2a_smd_collapse(&y, &c, &err), 0);
    T_EQ_STR(c.data, b.data);
    w2a_buf_free(&c);
    w2a_smd_free(&y);
    json_object_put(j);
    w2a_smd_free(&x);
  }
  w2a_buf_free(&b);
}

static void test_bad(void) {
  w2a_smd m;
  w2a_err err = {0};
  T_EQ_INT(w2a_smd_expand("Ggs!yp_T", 8, &m, &err), W2A_EINVAL);
  T_CHECK(strstr(err.msg, "base64 at character 3") != NULL);
  T_EQ_INT(w2a_smd_expand("A", 1, &m, &err), W2A_EINVAL);
  T_EQ_INT(w2a_smd_expand("AAAA", 4, &m, &err), W2A_EINVAL); /* field number 0 */
  T_CHECK(strstr(err.msg, "not a ServerMessageData") != NULL);
  T_EQ_INT(w2a_smd_expand("GgsI", 4, &m, &err), W2A_EINVAL); /* truncated */
  /* a field we do not know (2: varint 7): decodes, but is not lossless */
  T_EQ_INT(w2a_smd_expand("EAc", 3, &m, &err), 0);
  T_EQ_INT(m.lossless, 0);
  w2a_smd_free(&m);
  /* a large but valid value (long uuid) goes through the heap path */
  char big[4000];
  memset(big, 'u', sizeof big - 1);
  big[sizeof big - 1] = 0;
  w2a_smd x = {.uuid = big, .padded = 1};
  w2a_buf b;
  w2a_buf_init(&b, 0);
  T_EQ_INT(w2a_smd_collapse(&x, &b, &err), 0);
  T_EQ_INT(w2a_smd_expand(b.data, b.len, &m, &err), 0);
  T_EQ_STR(m.uuid, big);
  T_EQ_INT(m.lossless, 1);
  w2a_smd_free(&m);
  w2a_buf_free(&b);

  /* JSON shapes rejected */
  const char *bad_json[] = {
      "{\"seconds\":\"12x\"}",
      "{\"seconds\":1.5}",
      "{\"nanos\":1000000000}",
      "{\"uuid\":5}",
      "{\"padded\":\"no\"}",
      "{\"extra\":1}",
      "[]",
  };
  for (size_t i = 0; i < sizeof bad_json / sizeof *bad_json; i++) {
    json_object *j = json_tokener_parse(bad_json[i]);
    T_EQ_INT(w2a_smd_from_json(j, &m, &err), W2A_EINVAL);
    json_object_put(j);
  }
  /* accepted: seconds as a string, uuid null */
  json_object *j = json_tokener_parse("{\"uuid\":null,\"seconds\":\"1769263050\",\"nanos\":"
                                      "253462275}");
  T_EQ_INT(w2a_smd_from_json(j, &m, &err), 0);
  w2a_buf_init(&b, 0);
  T_EQ_INT(w2a_smd_collapse(&m, &b, &err), 0);
  T_EQ_STR(b.data, cap_smd);
  w2a_buf_free(&b);
  w2a_smd_free(&m);
  json_object_put(j);
}

static void test_json_tree(void) {
  const char *in =
      "{\"server_message_data\":5,\"a\":[{\"server_message_data\":\"GgsIyp_TywYQg47ueA==\"},"
      "{\"x\":{\"serverMessageData\":\"GgsIyp_TywYQg47ueA\"}},"
      "{\"server_message_data\":\"not base64!\"},{\"server_message_data\":\"EAc\"},"
      "[[{\"server_message_data\":\"\"}]]]}";
  json_object *t = json_tokener_parse(in);
  T_CHECK(t != NULL);
  T_EQ_INT(w2a_smd_expand_json(t), 3);
  const char *s = json_object_to_json_string_ext(t, JSON_C_TO_STRING_PLAIN);
  T_CHECK(strstr(s, "{\"server_message_data\":{\"seconds\":1769263050,\"nanos\":253462275}}") !=
          NULL);
  T_CHECK(strstr(s, "{\"serverMessageData\":{\"seconds\":1769263050,\"nanos\":253462275,"
                    "\"padded\":false}}") != NULL);
  T_CHECK(strstr(s, "\"not base64!\"") != NULL);
  T_CHECK(strstr(s, "\"EAc\"") != NULL);
  T_CHECK(strstr(s, "[[{\"server_message_data\":{}}]]") != NULL);
  w2a_err err = {0};
  T_EQ_INT(w2a_smd_collapse_json(t, &err), 3);
  json_object *orig = json_tokener_parse(in);
  T_CHECK(json_object_equal(t, orig));
  json_object_put(orig);
  /* expanding twice is harmless: objects are skipped */
  T_EQ_INT(w2a_smd_expand_json(t), 3);
  T_EQ_INT(w2a_smd_expand_json(t), 0);
  json_object_put(t);

  /* a malformed expanded value: the error names its JSON path */
  t = json_tokener_parse("{\"task\":{\"messages\":[{\"id\":\"m\"},{\"server_message_data\":"
                         "{\"seconds\":\"x\"}}]}}");
  T_CHECK(w2a_smd_collapse_json(t, &err) == W2A_EINVAL);
  T_CHECK(strstr(err.msg, "$.task.messages[1].server_message_data: ") == err.msg);
  json_object_put(t);
  /* non-containers */
  t = json_object_new_string("server_message_data");
  T_EQ_INT(w2a_smd_expand_json(t), 0);
  T_EQ_INT(w2a_smd_collapse_json(t, &err), 0);
  json_object_put(t);
  T_EQ_INT(w2a_smd_expand_json(NULL), 0);
}

int main(void) {
  T_RUN(test_capture_value);
  T_RUN(test_parts);
  T_RUN(test_bad);
  T_RUN(test_json_tree);
  return t_done();
}
