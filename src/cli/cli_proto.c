/* cli_proto.c - `warp2api proto encode|decode|schemas|decode-stream`.
 *
 * Thin wrappers over proto/pbjson.h and proto/registry.h for scripts and for checking
 * our transcoder against protoc. Input is read whole from stdin, capped by
 * MAX_BODY_BYTES. Exit codes: 0 done, 1 bad input (the message names the byte offset
 * or the JSON path), 2 usage. `decode-stream` lives in cli_proto_stream.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common/b64.h"
#include "common/buf.h"
#include "proto/pbjson.h"
#include "proto/registry.h"

static void usage(FILE *out) {
  fputs("usage: warp2api proto COMMAND [OPTIONS]\n"
        "\n"
        "  encode --type NAME [--b64] [--ignore-unknown]\n"
        "        JSON on stdin -> serialized protobuf on stdout (--b64: base64 text)\n"
        "  decode --type NAME [--b64] [--pretty] [--emit-defaults] [--no-unknown]\n"
        "        serialized protobuf on stdin (--b64: base64/base64url text) -> JSON\n"
        "  schemas\n"
        "        every message type, one per line: full name and field count\n"
        "  sample --type NAME\n"
        "        a JSON instance of NAME with every field set (a template for encode)\n"
        "  decode-stream [OPTIONS]\n"
        "        a Warp text/event-stream body on stdin -> one JSON event per line\n"
        "\n"
        "NAME is a full message name (warp.multi_agent.v1.Request) or any unambiguous\n"
        "suffix of one (Request, ResponseEvent, google.protobuf.Struct).\n",
        out);
}

static int read_stdin(w2a_buf *b, size_t cap) {
  w2a_buf_init(b, cap);
  char tmp[65536];
  size_t n;
  while ((n = fread(tmp, 1, sizeof tmp, stdin)) > 0) {
    int rc = w2a_buf_append(b, tmp, n);
    if (rc == W2A_ETOOBIG) {
      fprintf(stderr, "warp2api proto: input exceeds MAX_BODY_BYTES (%zu bytes)\n", cap);
      return 1;
    }
    if (rc) {
      fputs("warp2api proto: out of memory\n", stderr);
      return 1;
    }
  }
  if (ferror(stdin)) {
    perror("warp2api proto: reading stdin");
    return 1;
  }
  return 0;
}

static int write_all(const void *p, size_t n) {
  if (n && fwrite(p, 1, n, stdout) != n) return -1;
  return fflush(stdout) ? -1 : 0;
}

/* base64 text (either alphabet, padding optional, surrounding whitespace ignored) ->
 * bytes, in place. */
static int unbase64(w2a_buf *b) {
  size_t s = 0, e = b->len;
  while (s < e && strchr(" \t\r\n", b->data[s]))
    s++;
  while (e > s && strchr(" \t\r\n", b->data[e - 1]))
    e--;
  unsigned char *out = malloc(w2a_b64_dec_max(e - s) + 1);
  if (!out) return -1;
  size_t bad;
  long n = w2a_b64_decode(b->data + s, e - s, out, &bad);
  if (n < 0) {
    fprintf(stderr, "warp2api proto decode: invalid base64 at character %zu\n", bad + s);
    free(out);
    return -1;
  }
  memcpy(b->data, out, (size_t)n);
  b->len = (size_t)n;
  free(out);
  return 0;
}

static int cmd_schemas(void) {
  for (size_t i = 0; i < w2a_pb_count(); i++) {
    const ProtobufCMessageDescriptor *d = w2a_pb_at(i);
    printf("%s %u\n", d->name, d->n_fields);
  }
  return fflush(stdout) ? 1 : 0;
}

static int cmd_sample(int argc, char **argv) {
  const char *type = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--type") && i + 1 < argc)
      type = argv[++i];
    else if (!strncmp(argv[i], "--type=", 7))
      type = argv[i] + 7;
    else {
      fprintf(stderr, "warp2api proto sample: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (!type) {
    fputs("warp2api proto sample: --type NAME is required\n", stderr);
    return 2;
  }
  w2a_err err = {0};
  const ProtobufCMessageDescriptor *d;
  if (w2a_pb_lookup(type, &d, &err)) {
    fprintf(stderr, "warp2api proto sample: %s\n", err.msg);
    return 2;
  }
  w2a_buf out;
  w2a_buf_init(&out, 0);
  int rc = w2a_pbjson_sample(d, &out, &err) || w2a_buf_putc(&out, '\n');
  if (rc)
    fprintf(stderr, "warp2api proto sample: %s\n", err.msg);
  else
    rc = write_all(out.data, out.len) ? 1 : 0;
  w2a_buf_free(&out);
  return rc ? 1 : 0;
}

static int cmd_transcode(int encode, int argc, char **argv, w2a_config *cfg) {
  const char *type = NULL;
  int b64 = 0;
  w2a_pbjson_opts o = {0};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--type") && i + 1 < argc)
      type = argv[++i];
    else if (!strncmp(a, "--type=", 7))
      type = a + 7;
    else if (!strcmp(a, "--b64"))
      b64 = 1;
    else if (!encode && !strcmp(a, "--pretty"))
      o.pretty = 1;
    else if (!encode && !strcmp(a, "--emit-defaults"))
      o.emit_defaults = 1;
    else if (!encode && !strcmp(a, "--no-unknown"))
      o.skip_unknown = 1;
    else if (encode && !strcmp(a, "--ignore-unknown"))
      o.ignore_unknown_keys = 1;
    else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return 0;
    } else {
      fprintf(stderr, "warp2api proto %s: unknown option %s\n", argv[0], a);
      usage(stderr);
      return 2;
    }
  }
  if (!type) {
    fprintf(stderr, "warp2api proto %s: --type NAME is required\n", argv[0]);
    return 2;
  }
  w2a_err err = {0};
  const ProtobufCMessageDescriptor *d;
  if (w2a_pb_lookup(type, &d, &err)) {
    fprintf(stderr, "warp2api proto %s: %s\n", argv[0], err.msg);
    return 2;
  }
  size_t cap = cfg->max_body_bytes > 0 ? (size_t)cfg->max_body_bytes : W2A_PBJSON_MAX_INPUT;
  o.max_input = cap;
  o.struct_max_depth = cfg->struct_max_depth > 0 ? (size_t)cfg->struct_max_depth : 0;
  w2a_buf in, out;
  w2a_buf_init(&out, 0);
  int rc = read_stdin(&in, cap);
  if (rc) goto out;
  if (encode) {
    if (w2a_pbjson_from_json(d, in.data, in.len, &o, &out, &err)) {
      fprintf(stderr, "warp2api proto encode: %s\n", err.msg);
      rc = 1;
      goto out;
    }
    if (b64) {
      char *t = malloc(w2a_b64_enc_len(out.len) + 2);
      if (!t) {
        rc = 1;
        goto out;
      }
      size_t n = w2a_b64_encode(out.data, out.len, t, 0, 1);
      t[n++] = '\n';
      rc = write_all(t, n) ? 1 : 0;
      free(t);
    } else {
      rc = write_all(out.data, out.len) ? 1 : 0;
    }
  } else {
    if (b64 && unbase64(&in)) {
      rc = 1;
      goto out;
    }
    if (w2a_pbjson_to_json(d, (const uint8_t *)in.data, in.len, &o, &out, &err)) {
      fprintf(stderr, "warp2api proto decode: %s\n", err.msg);
      rc = 1;
      goto out;
    }
    if (w2a_buf_putc(&out, '\n')) {
      fputs("warp2api proto decode: output too large\n", stderr);
      rc = 1;
      goto out;
    }
    rc = write_all(out.data, out.len) ? 1 : 0;
  }
  if (rc) perror("warp2api proto: writing stdout");
out:
  w2a_buf_free(&in);
  w2a_buf_free(&out);
  return rc;
}

int w2a_cli_proto(int argc, char **argv, w2a_config *cfg) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *sub = argv[1];
  if (!strcmp(sub, "encode")) return cmd_transcode(1, argc - 1, argv + 1, cfg);
  if (!strcmp(sub, "decode")) return cmd_transcode(0, argc - 1, argv + 1, cfg);
  if (!strcmp(sub, "schemas")) return argc == 2 ? cmd_schemas() : (usage(stderr), 2);
  if (!strcmp(sub, "sample")) return cmd_sample(argc - 1, argv + 1);
  if (!strcmp(sub, "decode-stream")) return w2a_cli_proto_decode_stream(argc - 1, argv + 1, cfg);
  if (!strcmp(sub, "-h") || !strcmp(sub, "--help") || !strcmp(sub, "help")) {
    usage(stdout);
    return 0;
  }
  fprintf(stderr, "warp2api proto: unknown command \"%s\"\n", sub);
  usage(stderr);
  return 2;
}
