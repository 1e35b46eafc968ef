/* http/parse.c: the llhttp callbacks of a connection (conn.h). They collect the
 * request line, headers (names lower-cased) and body into the connection's
 * th_request, enforce MAX_HEADER_BYTES (431) and MAX_BODY_BYTES (413) while
 * parsing, run strict.c's checks on the head, answer `100 Continue`, move the
 * connection's phase and timer, and pause llhttp after each message so that the
 * server dispatches one request at a time. */
#include <stdlib.h>
#include <string.h>

#include "http/conn.h"
#include "runtime/config.h"

const char *th_request_header(const th_request *r, const char *name, size_t *len) {
  size_t nlen = strlen(name);
  for (int i = 0; i < r->nheaders; i++) {
    const th_header *h = &r->headers[i];
    if (h->name_len == nlen && memcmp(r->hbuf.data + h->name_off, name, nlen) == 0) {
      if (len) *len = h->value_len;
      return r->hbuf.data + h->value_off;
    }
  }
  return NULL;
}

static void request_reset(th_request *r) {
  r->url.len = 0;
  r->hbuf.len = 0;
  r->nheaders = 0;
  r->body.len = 0;
  r->path_len = 0;
  r->request_id[0] = '\0';
  r->keep_alive = 1;
  r->head = 0;
}

static int fail(th_conn *c, int status) {
  c->error_status = status;
  return -1;
}

static int count_header_bytes(th_conn *c, size_t n) {
  c->header_bytes += n;
  return c->header_bytes > th_cfg.max_header ? fail(c, 431) : 0;
}

static int on_message_begin(llhttp_t *p) {
  th_conn *c = p->data;
  request_reset(&c->req);
  c->header_bytes = 0;
  c->chunk_ext_bytes = 0;
  c->error_msg = NULL;
  c->version_seen = 0;
  c->value_done = 0;
  c->value_span_end = NULL;
  c->last_was_value = 1;
  c->req.start_ns = uv_hrtime();
  if (c->phase == C_IDLE) {
    c->phase = C_HEAD;
    th__conn_set_timer(c, th_cfg.header_timeout_ms);
  }
  return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n) {
  th_conn *c = p->data;
  if (count_header_bytes(c, n)) return -1;
  th_buf_add(&c->req.url, at, n);
  return 0;
}

static int on_version_complete(llhttp_t *p) {
  ((th_conn *)p->data)->version_seen = 1;
  return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n) {
  th_conn *c = p->data;
  th_request *r = &c->req;
  if (count_header_bytes(c, n + 4)) return -1;
  c->value_done = 0;
  c->value_span_end = NULL;
  if (c->last_was_value) {
    if (r->nheaders == r->cap_headers) {
      r->cap_headers = r->cap_headers ? r->cap_headers * 2 : 16;
      r->headers = realloc(r->headers, sizeof(th_header) * (size_t)r->cap_headers);
      if (!r->headers) abort();
    }
    th_header *h = &r->headers[r->nheaders++];
    h->name_off = r->hbuf.len;
    h->name_len = 0;
    h->value_off = 0;
    h->value_len = 0;
    c->last_was_value = 0;
  }
  th_header *h = &r->headers[r->nheaders - 1];
  size_t start = r->hbuf.len;
  th_buf_add(&r->hbuf, at, n);
  for (size_t i = start; i < r->hbuf.len; i++) {
    char ch = r->hbuf.data[i];
    if (ch >= 'A' && ch <= 'Z') r->hbuf.data[i] = (char)(ch + 32);
  }
  h->name_len += n;
  return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n) {
  th_conn *c = p->data;
  th_request *r = &c->req;
  if (count_header_bytes(c, n)) return -1;
  if (r->nheaders == 0 || c->value_done) { /* a value without a name (": v") */
    c->error_msg = "a header has an empty name";
    return fail(c, 400);
  }
  th_header *h = &r->headers[r->nheaders - 1];
  /* llhttp 8.1 joins an obs-fold continuation line to the value as a second
   * span; spans of one value are otherwise contiguous, or the second starts a
   * new llhttp_execute. RFC 9112 5.2: reject the fold. */
  if (c->last_was_value && c->value_span_end && at != c->value_span_end && at != c->exec_start) {
    c->error_msg = "obsolete line folding is not accepted";
    return fail(c, 400);
  }
  c->value_span_end = at + n;
  if (!c->last_was_value) {
    th_buf_add(&r->hbuf, "", 1); /* NUL after the name */
    h->value_off = r->hbuf.len;
    c->last_was_value = 1;
  }
  th_buf_add(&r->hbuf, at, n);
  h->value_len += n;
  return 0;
}

static int on_header_value_complete(llhttp_t *p) {
  th_conn *c = p->data;
  th_buf_add(&c->req.hbuf, "", 1); /* NUL after the value */
  c->value_done = 1;
  c->value_span_end = NULL;
  return 0;
}

static int on_headers_complete(llhttp_t *p) {
  th_conn *c = p->data;
  th_request *r = &c->req;
  /* A field with an empty value never saw on_header_value. */
  for (int i = 0; i < r->nheaders; i++)
    if (r->headers[i].value_off == 0)
      r->headers[i].value_off = r->headers[i].name_off + r->headers[i].name_len;
  if ((p->flags & F_CONTENT_LENGTH) && p->content_length > th_cfg.max_body) return fail(c, 413);
  int expect_continue = 0;
  int refuse = th__http_check_head(r, p->http_major, p->http_minor, c->version_seen,
                                   &expect_continue, &c->error_msg);
  if (refuse) return fail(c, refuse);
  th__http_absolute_form(&r->url);
  if (expect_continue && (p->content_length > 0 || (p->flags & F_CHUNKED))) {
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    th__conn_write(c, cont, sizeof cont - 1, 0);
    if (c->phase == C_CLOSING) return -1; /* the write failed: the connection is gone */
  }
  r->method = llhttp_method_name((llhttp_method_t)p->method);
  r->method_id = (int)p->method;
  r->head = p->method == HTTP_HEAD;
  const char *q = memchr(r->url.data ? r->url.data : "", '?', r->url.len);
  r->path_len = q ? (size_t)(q - r->url.data) : r->url.len;
  c->phase = C_BODY;
  th__conn_set_timer(c, th_cfg.body_timeout_ms);
  return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n) {
  th_conn *c = p->data;
  if (c->req.body.len + c->chunk_ext_bytes + n > th_cfg.max_body) return fail(c, 413);
  th_buf_add(&c->req.body, at, n);
  return 0;
}

static int on_chunk_extension(llhttp_t *p, const char *at, size_t n) {
  th_conn *c = p->data;
  (void)at;
  c->chunk_ext_bytes += n;
  return c->req.body.len + c->chunk_ext_bytes > th_cfg.max_body ? fail(c, 413) : 0;
}

static int on_message_complete(llhttp_t *p) {
  th_conn *c = p->data;
  c->req.keep_alive = llhttp_should_keep_alive(p);
  c->phase = C_HANDLING;
  th__conn_set_timer(c, 0);
  return HPE_PAUSED;
}

void th__http_parser_settings(llhttp_settings_t *s) {
  llhttp_settings_init(s);
  s->on_message_begin = on_message_begin;
  s->on_url = on_url;
  s->on_version_complete = on_version_complete;
  s->on_chunk_extension_name = on_chunk_extension;
  s->on_chunk_extension_value = on_chunk_extension;
  s->on_header_field = on_header_field;
  s->on_header_value = on_header_value;
  s->on_header_value_complete = on_header_value_complete;
  s->on_headers_complete = on_headers_complete;
  s->on_body = on_body;
  s->on_message_complete = on_message_complete;
}
