/* bench_pbjson.c - JSON <-> protobuf transcoding of a realistic large Request.
 *
 * The request carries 100 history messages in task_context.tasks[0].messages, cycling
 * through user_query, agent_output, tool_call (call_mcp_tool with Struct args) and
 * tool_call_result (call_mcp_tool results), plus settings, metadata.logging and an MCP
 * tool with a JSON schema, about what the gateway sends on a long conversation. Each
 * direction runs ITERS times; the median, p10 and p90 are printed in µs, with sizes.
 *   json->pb   w2a_pbjson_from_json (parse, then encode straight from the tree)
 *   pb->json   w2a_pbjson_to_json (validate, then print straight from the wire)
 *   validate   w2a_pbjson_validate alone
 * each followed by "ref", the protobuf-c reference path (w2a_pbjson_*_ref: build
 * structs + pack; validate + unpack + print the structs), timed in the same iteration
 * right after it so that both see the same machine load. Outputs are checked equal.
 *   unpack     protobuf_c_message_unpack + free_unpacked alone, for scale: what
 *              w2a_pbjson_unpack adds to it is the validate line
 * Usage: bench_pbjson [ITERS] [MESSAGES] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/util.h"
#include "proto/pbjson.h"
#include "request.pb-c.h"

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void build_json(w2a_buf *b, int n) {
  w2a_buf_puts(
      b, "{\"task_context\":{\"tasks\":[{\"id\":\"4add95ff-0375-4702-a2ee-38fea0513f32\","
         "\"description\":\"Weather planning\",\"status\":{\"in_progress\":{}},\"messages\":[");
  for (int i = 0; i < n; i++) {
    if (i) w2a_buf_putc(b, ',');
    w2a_buf_printf(b,
                   "{\"id\":\"9e6c585e-12c5-48ef-85ef-%012d\",\"task_id\":"
                   "\"4add95ff-0375-4702-a2ee-38fea0513f32\",",
                   i);
    switch (i % 4) {
    case 0:
      w2a_buf_printf(b,
                     "\"user_query\":{\"query\":\"Question %d: what is the weather like in "
                     "Paris this week, and should I bring an umbrella? 请用中文回答。\"}}",
                     i);
      break;
    case 1:
      w2a_buf_printf(b,
                     "\"agent_output\":{\"text\":\"Answer %d: I will look that up. The "
                     "forecast shows a mix of sun and rain; temperatures between 8 and 14 "
                     "degrees. An umbrella would be wise on Wednesday and Thursday.\"}}",
                     i);
      break;
    case 2:
      w2a_buf_printf(b,
                     "\"tool_call\":{\"tool_call_id\":\"call_%d\",\"call_mcp_tool\":{\"name\":"
                     "\"get_weather\",\"args\":{\"city\":\"Paris\",\"days\":7,\"units\":"
                     "\"metric\",\"hourly\":false,\"fields\":[\"temp\",\"rain\",\"wind\"],"
                     "\"location\":{\"lat\":48.8566,\"lon\":2.3522}}}}}",
                     i);
      break;
    default:
      w2a_buf_printf(b,
                     "\"tool_call_result\":{\"tool_call_id\":\"call_%d\",\"call_mcp_tool\":{"
                     "\"success\":{\"results\":[{\"text\":{\"text\":\"{\\\"mon\\\":{\\\"t\\\":12,"
                     "\\\"rain\\\":0.1},\\\"tue\\\":{\\\"t\\\":13,\\\"rain\\\":0.0},\\\"wed\\\":{"
                     "\\\"t\\\":9,\\\"rain\\\":4.2}}\"}}]}}}}",
                     i - 1);
      break;
    }
  }
  w2a_buf_puts(
      b, "]}],\"active_task_id\":\"4add95ff-0375-4702-a2ee-38fea0513f32\"},"
         "\"input\":{\"context\":{\"directory\":{\"pwd\":\"/tmp\",\"home\":\"/tmp\"},"
         "\"operating_system\":{\"platform\":\"MacOS\"},\"shell\":{\"name\":\"zsh\",\"version\":"
         "\"5.9\"},\"current_time\":\"2026-01-24T14:51:26.666634Z\"},\"user_inputs\":{\"inputs\":"
         "[{\"user_query\":{\"query\":\"And next week?\",\"referenced_attachments\":{"
         "\"SYSTEM_PROMPT\":{\"plain_text\":\"You are a helpful assistant.\"}}}}]}},"
         "\"settings\":{\"model_config\":{\"base\":\"claude-4-5-opus\",\"cli_agent\":"
         "\"cli-agent-auto\"},\"rules_enabled\":true,\"supports_parallel_tool_calls\":true,"
         "\"supported_tools\":[\"CALL_MCP_TOOL\",\"GREP\",13,20]},"
         "\"metadata\":{\"conversation_id\":\"7503a482-5517-4b5e-9057-4b0ec73b004b\",\"logging\":{"
         "\"entrypoint\":\"USER_INITIATED\",\"is_autodetected_user_query\":true}},"
         "\"mcp_context\":{\"tools\":[{\"name\":\"get_weather\",\"description\":\"Weather "
         "forecast\",\"input_schema\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":"
         "\"string\"},\"days\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":16}},\"required\":"
         "[\"city\"]}}]}}");
}

typedef struct stats {
  double p10, p50, p90;
} stats;

static stats summarize(uint64_t *ns, int n) {
  qsort(ns, (size_t)n, sizeof *ns, cmp_u64);
  stats s = {ns[n / 10] / 1e3, ns[n / 2] / 1e3, ns[n * 9 / 10] / 1e3};
  return s;
}

static void report(const char *what, uint64_t *ns, int n, size_t json_len) {
  stats s = summarize(ns, n);
  printf("%-9s  median %8.1f us   p10 %8.1f   p90 %8.1f", what, s.p50, s.p10, s.p90);
  if (json_len) printf("   (%.0f MB/s of JSON)", json_len / s.p50);
  putchar('\n');
}

int main(int argc, char **argv) {
  int iters = argc > 1 ? atoi(argv[1]) : 2000;
  int nmsg = argc > 2 ? atoi(argv[2]) : 100;
  if (iters < 10 || nmsg < 1) {
    fputs("usage: bench_pbjson [ITERS>=10] [MESSAGES>=1]\n", stderr);
    return 2;
  }
  const ProtobufCMessageDescriptor *d = &warp__multi_agent__v1__request__descriptor;
  w2a_buf js, pb, out;
  w2a_err err = {0};
  w2a_buf_init(&js, 0);
  w2a_buf_init(&pb, 0);
  w2a_buf_init(&out, 0);
  build_json(&js, nmsg);
  if (w2a_pbjson_from_json(d, js.data, js.len, NULL, &pb, &err)) {
    fprintf(stderr, "bench_pbjson: %s\n", err.msg);
    return 1;
  }
  /* The canonical JSON (what decode prints) is the input of the json->pb runs. */
  if (w2a_pbjson_to_json(d, (const uint8_t *)pb.data, pb.len, NULL, &out, &err)) {
    fprintf(stderr, "bench_pbjson: %s\n", err.msg);
    return 1;
  }
  uint64_t *t = malloc(sizeof *t * (size_t)iters);
  printf("request: %d history messages, %zu bytes protobuf, %zu bytes JSON; %d iterations\n", nmsg,
         pb.len, out.len, iters);

  /* Each iteration runs the fast path and the protobuf-c reference path back to back,
   * so both see the same load on a shared machine. */
  uint64_t *t2 = malloc(sizeof *t2 * (size_t)iters);
  w2a_buf tmp;
  w2a_buf_init(&tmp, 0);
  for (int i = 0; i < iters; i++) {
    w2a_buf_reset(&tmp);
    uint64_t t0 = w2a_mono_ns();
    int rc = w2a_pbjson_from_json(d, out.data, out.len, NULL, &tmp, &err);
    t[i] = w2a_mono_ns() - t0;
    if (rc || tmp.len != pb.len || memcmp(tmp.data, pb.data, pb.len)) return 1;
    w2a_buf_reset(&tmp);
    t0 = w2a_mono_ns();
    rc = w2a_pbjson_from_json_ref(d, out.data, out.len, NULL, &tmp, &err);
    t2[i] = w2a_mono_ns() - t0;
    if (rc || tmp.len != pb.len) return 1;
  }
  report("json->pb", t, iters, out.len);
  report("  ref", t2, iters, out.len);

  for (int i = 0; i < iters; i++) {
    w2a_buf_reset(&tmp);
    uint64_t t0 = w2a_mono_ns();
    int rc = w2a_pbjson_to_json(d, (const uint8_t *)pb.data, pb.len, NULL, &tmp, &err);
    t[i] = w2a_mono_ns() - t0;
    if (rc || tmp.len != out.len || memcmp(tmp.data, out.data, out.len)) return 1;
    w2a_buf_reset(&tmp);
    t0 = w2a_mono_ns();
    rc = w2a_pbjson_to_json_ref(d, (const uint8_t *)pb.data, pb.len, NULL, &tmp, &err);
    t2[i] = w2a_mono_ns() - t0;
    if (rc || tmp.len != out.len) return 1;
  }
  report("pb->json", t, iters, out.len);
  report("  ref", t2, iters, out.len);

  for (int i = 0; i < iters; i++) {
    uint64_t t0 = w2a_mono_ns();
    int rc = w2a_pbjson_validate(d, (const uint8_t *)pb.data, pb.len, &err);
    t[i] = w2a_mono_ns() - t0;
    if (rc) return 1;
    t0 = w2a_mono_ns();
    rc = w2a_pbjson_validate_ref(d, (const uint8_t *)pb.data, pb.len, NULL, &err);
    t2[i] = w2a_mono_ns() - t0;
    if (rc) return 1;
  }
  report("validate", t, iters, 0);
  report("  ref", t2, iters, 0);

  /* What validation guards: protobuf-c's own unpack (default allocator) and free. */
  for (int i = 0; i < iters; i++) {
    uint64_t t0 = w2a_mono_ns();
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, pb.len, (const uint8_t *)pb.data);
    if (!m) return 1;
    protobuf_c_message_free_unpacked(m, NULL);
    t[i] = w2a_mono_ns() - t0;
  }
  report("unpack", t, iters, 0);

  free(t2);
  free(t);
  w2a_buf_free(&tmp);
  w2a_buf_free(&js);
  w2a_buf_free(&pb);
  w2a_buf_free(&out);
  return 0;
}
