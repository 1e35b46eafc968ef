/* prim/tz.c: the "tz" primitive. Converts between UTC instants and wall-clock
 * time in an IANA zone, using glibc over the system tz database (no offset or
 * DST tables of our own), plus RFC 3339 formatting and parsing.
 *
 * Ownership: all state is static. The zone glibc uses is selected by setting
 * TZ=":<name>" and calling tzset(); the name of the selected zone is cached in
 * `cur_zone` so that repeated calls in one zone do not re-read the zone file.
 * This changes the process-wide TZ: nothing else in the host may rely on the
 * local zone (log lines use UTC). The host runs Lua on one thread per process,
 * so there is no locking. Nothing is allocated; strings go to Lua's stack.
 *
 * Gap/fold policy (from_local, from_wall): a wall time that does not exist
 * (spring forward) is read with the offset before the gap, i.e. moved forward
 * by the gap; an ambiguous one (fall back) takes the first (earlier) instant.
 * Python's zoneinfo with fold=0 does the same, which the specs rely on.
 */
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TZ__NAME_MAX 128

int luaopen_th_tz(lua_State *L);

/* The zone glibc currently uses (empty: not set by us yet). */
static char cur_zone[TZ__NAME_MAX];
/* The last name that passed validation; checked before touching the disk. */
static char valid_zone[TZ__NAME_MAX];

static const char *tz__dir(void) {
  const char *d = getenv("TZDIR");
  return (d && *d) ? d : "/usr/share/zoneinfo";
}

/* A zone name is valid when it is a relative path of plain components made of
 * [A-Za-z0-9_+-.] (no "." or ".." component), not under right/ (leap-second
 * zones count seconds differently), and names a regular TZif file. glibc would
 * silently use UTC for anything else, so this check is the only guard. */
static int tz__valid(const char *name, size_t len) {
  if (len == 0 || len >= TZ__NAME_MAX) return 0;
  if (strcmp(name, valid_zone) == 0) return 1;
  if (name[0] == '/' || strncmp(name, "right/", 6) == 0) return 0;
  size_t comp = 0; /* length of the current component */
  for (size_t i = 0; i <= len; i++) {
    char c = name[i];
    if (c == '/' || c == '\0') {
      if (comp == 0) return 0; /* empty component: "a//b", "a/" */
      if (name[i - 1] == '.' && (comp == 1 || (comp == 2 && name[i - 2] == '.')))
        return 0; /* "." or ".." */
      comp = 0;
      continue;
    }
    int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '+' || c == '-' || c == '.';
    if (!ok) return 0;
    comp++;
  }
  char path[512];
  int n = snprintf(path, sizeof path, "%s/%s", tz__dir(), name);
  if (n < 0 || (size_t)n >= sizeof path) return 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  struct stat st;
  char magic[4];
  int good = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && read(fd, magic, 4) == 4 &&
             memcmp(magic, "TZif", 4) == 0;
  close(fd);
  if (good) memcpy(valid_zone, name, len + 1);
  return good;
}

/* Check the zone argument at idx and make it glibc's current zone. */
static void tz__use(lua_State *L, int idx) {
  size_t len;
  const char *name = luaL_checklstring(L, idx, &len);
  if (strcmp(name, cur_zone) == 0) return;
  if (strlen(name) != len || !tz__valid(name, len)) luaL_error(L, "invalid time zone '%s'", name);
  char env[TZ__NAME_MAX + 2];
  env[0] = ':';
  memcpy(env + 1, name, len + 1);
  if (setenv("TZ", env, 1) != 0) luaL_error(L, "setenv TZ failed");
  tzset();
  memcpy(cur_zone, name, len + 1);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil); m in 1..12. */
static int64_t tz__days(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static int64_t tz__floordiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* UTC offset in seconds at instant t in the current zone. */
static int tz__offset(lua_State *L, int64_t t, struct tm *out) {
  time_t tt = (time_t)t;
  struct tm tmv, *tm = out ? out : &tmv;
  if ((int64_t)tt != t || localtime_r(&tt, tm) == NULL) return luaL_error(L, "time out of range");
  return (int)tm->tm_gmtoff;
}

/* Instant of naive wall seconds `w` (seconds since 1970-01-01 as if UTC) in the
 * current zone, with the gap/fold policy above. Offsets are sampled a day
 * either side, which covers every real transition (they are months apart). */
static int64_t tz__from_wall(lua_State *L, int64_t w) {
  int o_early = tz__offset(L, w - 86400 - 50400, NULL);
  int o_late = tz__offset(L, w + 86400 + 50400, NULL);
  if (o_early == o_late && tz__offset(L, w - o_early, NULL) == o_early)
    return w - o_early; /* no transition nearby: the common case */
  int64_t best = INT64_MAX;
  int cands[4] = {o_early, o_late, 0, 0};
  cands[2] = tz__offset(L, w - o_early, NULL);
  cands[3] = tz__offset(L, w - o_late, NULL);
  for (int i = 0; i < 4; i++) {
    int64_t t = w - cands[i];
    if (t < best && tz__offset(L, t, NULL) == cands[i]) best = t;
  }
  if (best != INT64_MAX) return best;
  /* In a gap: read with the offset in force before it. */
  return w - o_early;
}

static int64_t tz__checkint(lua_State *L, int idx) {
  int isnum;
  lua_Integer v = lua_tointegerx(L, idx, &isnum);
  if (!isnum) luaL_argerror(L, idx, "integer expected");
  return (int64_t)v;
}

/* Wall seconds from possibly out-of-range fields (normalized like mktime). */
static int64_t tz__wall(int64_t y, int64_t mo, int64_t d, int64_t h, int64_t mi, int64_t s) {
  int64_t m0 = mo - 1;
  y += tz__floordiv(m0, 12);
  m0 -= tz__floordiv(m0, 12) * 12;
  return (tz__days(y, m0 + 1, 1) + d - 1) * 86400 + h * 3600 + mi * 60 + s;
}

/*** Is `name` a zone of the system tz database?
 * @function tz.valid
 * @tparam string name IANA zone name, e.g. "Europe/Berlin"
 * @treturn boolean
 */
static int l_valid(lua_State *L) {
  size_t len;
  const char *name = luaL_checklstring(L, 1, &len);
  lua_pushboolean(L, strlen(name) == len && tz__valid(name, len));
  return 1;
}

/*** Wall-clock fields of an instant in a zone. Raises on an invalid zone.
 * @function tz.to_local
 * @tparam integer epoch seconds since 1970-01-01T00:00:00Z
 * @tparam string zone IANA zone name
 * @treturn integer year, month (1-12), day, hour, min, sec,
 *   wday (1 = Sunday .. 7 = Saturday), offset_seconds (east of UTC)
 */
static int l_to_local(lua_State *L) {
  int64_t t = tz__checkint(L, 1);
  tz__use(L, 2);
  struct tm tm;
  int off = tz__offset(L, t, &tm);
  lua_pushinteger(L, (lua_Integer)tm.tm_year + 1900);
  lua_pushinteger(L, tm.tm_mon + 1);
  lua_pushinteger(L, tm.tm_mday);
  lua_pushinteger(L, tm.tm_hour);
  lua_pushinteger(L, tm.tm_min);
  lua_pushinteger(L, tm.tm_sec);
  lua_pushinteger(L, tm.tm_wday + 1);
  lua_pushinteger(L, off);
  return 8;
}

/*** Instant of wall-clock fields in a zone. Fields may be out of range and are
 * normalized like mktime (month 13 is January of the next year). A time in a
 * DST gap moves forward by the gap; an ambiguous time takes the first instant.
 * @function tz.from_local
 * @tparam integer year
 * @tparam integer month
 * @tparam integer day
 * @tparam integer hour
 * @tparam integer min
 * @tparam integer sec
 * @tparam string zone
 * @treturn integer epoch seconds
 */
static int l_from_local(lua_State *L) {
  int64_t f[6];
  for (int i = 0; i < 6; i++) {
    f[i] = tz__checkint(L, i + 1);
    if (f[i] < -100000000 || f[i] > 100000000) luaL_argerror(L, i + 1, "out of range");
  }
  tz__use(L, 7);
  lua_pushinteger(L, tz__from_wall(L, tz__wall(f[0], f[1], f[2], f[3], f[4], f[5])));
  return 1;
}

/*** Instant of "wall seconds" (seconds since 1970-01-01 00:00 of the local
 * calendar, counted as if every day had 86400 s) in a zone, with the same
 * gap/fold policy as from_local. Used by the recurrence engine, which computes
 * in wall seconds and converts only what it emits.
 * @function tz.from_wall
 * @tparam integer wall
 * @tparam string zone
 * @treturn integer epoch seconds
 */
static int l_from_wall(lua_State *L) {
  int64_t w = tz__checkint(L, 1);
  tz__use(L, 2);
  lua_pushinteger(L, tz__from_wall(L, w));
  return 1;
}

/*** Wall seconds of an instant in a zone (the inverse of from_wall).
 * @function tz.to_wall
 * @tparam integer epoch
 * @tparam string zone
 * @treturn integer wall seconds
 * @treturn integer offset seconds east of UTC
 */
static int l_to_wall(lua_State *L) {
  int64_t t = tz__checkint(L, 1);
  tz__use(L, 2);
  int off = tz__offset(L, t, NULL);
  lua_pushinteger(L, t + off);
  lua_pushinteger(L, off);
  return 2;
}

/*** RFC 3339 text of an instant with the zone's offset at that instant, e.g.
 * "2026-03-29T09:00:00+02:00"; offset 0 is written "Z". Historical offsets with
 * seconds (LMT) are truncated to minutes and the time shown adjusted so the
 * string still names the same instant.
 * @function tz.format
 * @tparam integer epoch
 * @tparam string zone
 * @treturn string
 */
static int l_format(lua_State *L) {
  int64_t t = tz__checkint(L, 1);
  tz__use(L, 2);
  int off = tz__offset(L, t, NULL);
  off = off / 60 * 60;
  time_t lt = (time_t)(t + off);
  struct tm tm;
  if (gmtime_r(&lt, &tm) == NULL || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0)
    return luaL_error(L, "time out of range");
  char buf[40];
  int n = snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  if (off == 0) {
    snprintf(buf + n, sizeof buf - (size_t)n, "Z");
  } else {
    int a = off < 0 ? -off : off;
    snprintf(buf + n, sizeof buf - (size_t)n, "%c%02d:%02d", off < 0 ? '-' : '+', a / 3600,
             a / 60 % 60);
  }
  lua_pushstring(L, buf);
  return 1;
}

/* Read exactly n digits at *p; -1 when they are not there. */
static int tz__digits(const char **p, int n) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    char c = (*p)[i];
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  *p += n;
  return v;
}

static int tz__fail(lua_State *L, const char *what, const char *s, const char *p) {
  lua_pushnil(L);
  lua_pushfstring(L, "invalid RFC 3339 time: %s at offset %d", what, (int)(p - s));
  return 2;
}

/*** Parse an RFC 3339 date-time ("2026-03-29T09:00:00+02:00",
 * "2026-03-29T07:00:00.250Z"). "t"/"z" and a space separator are accepted as
 * RFC 3339 allows; a leap second (:60) is read as the next second.
 * @function tz.parse_rfc3339
 * @tparam string s
 * @treturn[1] integer epoch seconds
 * @treturn[1] number fraction of a second (0 <= f < 1)
 * @treturn[2] nil
 * @treturn[2] string what is wrong and where
 */
static int l_parse_rfc3339(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  const char *p = s;
  static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int y = tz__digits(&p, 4);
  if (y < 0) return tz__fail(L, "expected 4-digit year", s, p);
  if (*p++ != '-') return tz__fail(L, "expected '-' after year", s, p - 1);
  int mo = tz__digits(&p, 2);
  if (mo < 1 || mo > 12) return tz__fail(L, "bad month", s, p);
  if (*p++ != '-') return tz__fail(L, "expected '-' after month", s, p - 1);
  int d = tz__digits(&p, 2);
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (d < 1 || d > mdays[mo - 1] + (mo == 2 && leap)) return tz__fail(L, "bad day", s, p);
  if (*p != 'T' && *p != 't' && *p != ' ') return tz__fail(L, "expected 'T' after date", s, p);
  p++;
  int h = tz__digits(&p, 2);
  if (h < 0 || h > 23) return tz__fail(L, "bad hour", s, p);
  if (*p++ != ':') return tz__fail(L, "expected ':' after hour", s, p - 1);
  int mi = tz__digits(&p, 2);
  if (mi < 0 || mi > 59) return tz__fail(L, "bad minute", s, p);
  if (*p++ != ':') return tz__fail(L, "expected ':' after minute", s, p - 1);
  int sec = tz__digits(&p, 2);
  if (sec < 0 || sec > 60) return tz__fail(L, "bad second", s, p);
  double frac = 0, scale = 0.1;
  if (*p == '.') {
    p++;
    if (*p < '0' || *p > '9') return tz__fail(L, "expected digits after '.'", s, p);
    while (*p >= '0' && *p <= '9') {
      frac += (*p++ - '0') * scale;
      scale /= 10;
    }
  }
  int off;
  if (*p == 'Z' || *p == 'z') {
    off = 0;
    p++;
  } else if (*p == '+' || *p == '-') {
    int sign = *p++ == '-' ? -1 : 1;
    int oh = tz__digits(&p, 2);
    if (oh < 0 || oh > 23) return tz__fail(L, "bad offset hour", s, p);
    if (*p++ != ':') return tz__fail(L, "expected ':' in offset", s, p - 1);
    int om = tz__digits(&p, 2);
    if (om < 0 || om > 59) return tz__fail(L, "bad offset minute", s, p);
    off = sign * (oh * 3600 + om * 60);
  } else {
    return tz__fail(L, "expected 'Z' or offset", s, p);
  }
  if ((size_t)(p - s) != len) return tz__fail(L, "trailing characters", s, p);
  lua_pushinteger(L, tz__days(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off);
  lua_pushnumber(L, frac < 1 ? frac : 0.999999999);
  return 2;
}

int luaopen_th_tz(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"valid", l_valid},
      {"to_local", l_to_local},
      {"from_local", l_from_local},
      {"from_wall", l_from_wall},
      {"to_wall", l_to_wall},
      {"format", l_format},
      {"parse_rfc3339", l_parse_rfc3339},
      {NULL, NULL},
  };
  luaL_newlib(L, fns);
  return 1;
}
