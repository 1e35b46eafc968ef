--- RFC 5545 recurrence rules: parse, validate, print and expand.
--
-- Expansion happens in the wall-clock time of an IANA zone: DTSTART is the
-- first due time, and "every day at 09:00 Europe/Berlin" stays at 09:00 local
-- across DST changes. The engine computes in integer "wall seconds" (seconds
-- since 1970-01-01 00:00 of the local calendar, every day 86400 s long) and
-- converts to an instant (`tz.from_wall`) only the occurrences it emits.
-- A wall time inside a DST gap moves forward by the gap; an ambiguous one takes
-- the first instant (the tz primitive's policy).
--
-- Semantics follow RFC 5545 and, where the RFC leaves room, python-dateutil
-- (the differential oracle in spec/):
--
-- * occurrences before DTSTART are not emitted and do not count; DTSTART
--   itself is emitted only when it matches the rule;
-- * COUNT counts wall-clock occurrences. When two wall times map to the same
--   or an earlier instant (only inside a DST gap, e.g. 02:30 and 03:30 on a
--   spring-forward day), the later one is dropped from the output;
-- * BYDAY mixing plain and ordinal days (`MO,1TU`) is the union (RFC), where
--   dateutil intersects;
-- * UNTIL may be a UTC instant (`...Z`), a floating local date-time, or a date
--   (inclusive of that whole local day);
-- * a rule that produces nothing for 400 years, or past year 9999, ends.
--
-- Parsing and printing rules is recurrence.rrule_text (re-exported here), the
-- calendar arithmetic recurrence.calendar.
-- @module recurrence.rrule

local tz = require "tz"
local cal = require "recurrence.calendar"
local text = require "recurrence.rrule_text"

local from_wall, to_wall = tz.from_wall, tz.to_wall
local sort = table.sort
local civil_from_days, days_from_civil, is_leap = cal.civil_from_days, cal.days_from_civil, cal.is_leap
local FREQ, WD, MASKS = cal.FREQ, cal.WD, cal.MASKS
local YEARLY, MONTHLY, WEEKLY, DAILY = FREQ.YEARLY, FREQ.MONTHLY, FREQ.WEEKLY, FREQ.DAILY
local HOURLY, MINUTELY = FREQ.HOURLY, FREQ.MINUTELY

local M = {}

M.days_from_civil = days_from_civil
M.civil_from_days = civil_from_days
M.parse = text.parse
M.to_string = text.to_string
M.validate = text.validate
M.TIMES_PER_DAY_MAX = text.TIMES_PER_DAY_MAX

-- Parsed rules by text; bounded so arbitrary input cannot grow it forever.
local cache, cache_n = {}, 0

local function get_rule(rule)
  if type(rule) == "table" then
    if not rule.freq then error("rule table expected (from parse)", 3) end
    return rule
  end
  if type(rule) ~= "string" then error("rule must be a string or a parsed rule", 3) end
  local r = cache[rule]
  if r then return r end
  local err
  r, err = M.parse(rule)
  if not r then return nil, err end
  if cache_n >= 512 then cache, cache_n = {}, 0 end
  cache[rule], cache_n = r, cache_n + 1
  return r
end

---------------------------------------------------------------------------
-- Expansion.

local function set_of(list)
  if not list then return nil end
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

local function sorted_copy(list)
  local c = {}
  for i, v in ipairs(list) do c[i] = v end
  sort(c)
  return c
end

-- The ascending, de-duplicated indexes that BYSETPOS picks from a set of n.
local function setpos_pick(setpos, n, out)
  local k = 0
  for i = 1, #setpos do
    local p = setpos[i]
    local idx = p > 0 and p - 1 or n + p
    if idx >= 0 and idx < n then
      local dup = false
      for q = 1, k do if out[q] == idx then dup = true break end end
      if not dup then
        k = k + 1
        out[k] = idx
      end
    end
  end
  -- insertion sort: k is tiny
  for a = 2, k do
    local v, b = out[a], a - 1
    while b >= 1 and out[b] > v do
      out[b + 1] = out[b]
      b = b - 1
    end
    out[b + 1] = v
  end
  return k
end

local LIMIT_DAYS = 146097 -- 400 years without an occurrence ends a rule
local MAX_DAY = days_from_civil(10000, 1, 1)

-- Build the occurrence generator of rule r for DTSTART (epoch) in zone,
-- starting its scan at day `from_day` (a wall day number, or nil for DTSTART).
-- Returns a function giving successive epochs, then nil.
local function generator(r, dtstart, zone, from_day)
  local f = FREQ[r.freq]
  local I = r.interval
  local wkst = WD[r.wkst]
  local w0 = to_wall(dtstart, zone)
  local d0 = w0 // 86400
  local tod0 = w0 % 86400
  local h0, mi0, s0 = tod0 // 3600, tod0 // 60 % 60, tod0 % 60
  local y0, m0, md0 = civil_from_days(d0)
  local wd0 = (d0 + 3) % 7

  -- Day filters (sets), with dateutil/RFC defaults taken from DTSTART.
  local bymonth, bymd, wdset = set_of(r.bymonth), nil, nil
  local byyd, bywno = set_of(r.byyearday), set_of(r.byweekno)
  local nwd -- ordinal weekdays: array of {wd, n}
  local months = r.bymonth and sorted_copy(r.bymonth)
  if r.bymonthday then bymd = set_of(r.bymonthday) end
  if r.byday then
    for _, d in ipairs(r.byday) do
      if d.n then
        nwd = nwd or {}
        nwd[#nwd + 1] = { d.wd, d.n }
      else
        wdset = wdset or {}
        wdset[d.wd] = true
      end
    end
  end
  if not (r.byweekno or r.byyearday or r.bymonthday or r.byday) then
    if f == YEARLY then
      if not months then
        months = { m0 }
        bymonth = { [m0] = true }
      end
      bymd = { [md0] = true }
    elseif f == MONTHLY then
      bymd = { [md0] = true }
    elseif f == WEEKLY then
      wdset = { [wd0] = true }
    end
  end
  local byhour, byminute = set_of(r.byhour), set_of(r.byminute)
  local hours = r.byhour and sorted_copy(r.byhour) or { h0 }
  local mins = r.byminute and sorted_copy(r.byminute) or { mi0 }
  local secs = r.bysecond and sorted_copy(r.bysecond) or { s0 }
  local setpos = r.bysetpos
  local pick = {}

  -- Offsets within a period's time group: the times of a day (YEARLY..DAILY),
  -- the minutes:seconds of an hour (HOURLY) or the seconds of a minute.
  local group = {}
  if f <= DAILY then
    for _, h in ipairs(hours) do
      for _, m in ipairs(mins) do
        for _, s in ipairs(secs) do group[#group + 1] = h * 3600 + m * 60 + s end
      end
    end
  elseif f == HOURLY then
    for _, m in ipairs(mins) do
      for _, s in ipairs(secs) do group[#group + 1] = m * 60 + s end
    end
  else
    for _, s in ipairs(secs) do group[#group + 1] = s end
  end
  local ng = #group
  -- For DAILY and finer the BYSETPOS set is one group: pick once.
  if setpos and f >= DAILY then
    local k = setpos_pick(setpos, ng, pick)
    local g = {}
    for i = 1, k do g[i] = group[pick[i] + 1] end
    group, ng, setpos = g, k, nil
  end

  -- Current year: masks, first day number, lengths, week-1 starts.
  local cy, yo, ylen, nylen, jan1wd = nil, 0, 0, 0, 0
  local MM, MD, NMD, MS, ME
  local w1p, w1c, w1n, w1nn = 0, 0, 0, 0
  local nwdmask, gen = {}, 0

  local function week1(y)
    local jan1 = days_from_civil(y, 1, 1)
    local off = ((jan1 + 3) % 7 - wkst) % 7
    local s = jan1 - off
    if off >= 4 then s = s + 7 end
    return s
  end

  local function mark_nwd(first, last)
    for i = 1, #nwd do
      local wd, n = nwd[i][1], nwd[i][2]
      local j
      if n > 0 then
        j = first + (n - 1) * 7 + (wd - (jan1wd + first - 1) % 7) % 7
      else
        j = last + (n + 1) * 7 - ((jan1wd + last - 1) % 7 - wd) % 7
      end
      if j >= first and j <= last then nwdmask[j] = gen end
    end
  end

  local function set_year(y)
    cy = y
    yo = days_from_civil(y, 1, 1)
    local leap = is_leap(y)
    ylen = leap and 366 or 365
    nylen = is_leap(y + 1) and 366 or 365
    jan1wd = (yo + 3) % 7
    local mk = MASKS[leap]
    MM, MD, NMD, MS, ME = mk.mm, mk.md, mk.nmd, mk.ms, mk.me
    if bywno then
      w1p, w1c, w1n, w1nn = week1(y - 1), week1(y), week1(y + 1), week1(y + 2)
    end
    if nwd and f == YEARLY then
      gen = gen + 1
      if months then
        for _, m in ipairs(months) do mark_nwd(MS[m], ME[m]) end
      else
        mark_nwd(1, ylen)
      end
    end
  end

  local function ensure_year(o)
    if o < yo or o >= yo + ylen or not cy then set_year((civil_from_days(o))) end
  end

  -- Does day j (1-based day of the current year; > ylen: next January) pass
  -- every BY-day filter?
  local function day_ok(j)
    local mm, md, nmd
    if j <= ylen then
      mm, md, nmd = MM[j], MD[j], NMD[j]
    else
      mm, md = 1, j - ylen
      nmd = md - 32
    end
    if bymonth and not bymonth[mm] then return false end
    if bymd and not (bymd[md] or bymd[nmd]) then return false end
    if wdset or nwd then
      if not ((wdset and wdset[(jan1wd + j - 1) % 7]) or (nwd and nwdmask[j] == gen)) then
        return false
      end
    end
    if byyd then
      if j <= ylen then
        if not (byyd[j] or byyd[j - ylen - 1]) then return false end
      else
        local k = j - ylen
        if not (byyd[k] or byyd[k - nylen - 1]) then return false end
      end
    end
    if bywno then
      local o = yo + j - 1
      local w, nw
      if o < w1c then
        w, nw = (o - w1p) // 7 + 1, (w1c - w1p) // 7
      elseif o >= w1n then
        w, nw = (o - w1n) // 7 + 1, (w1nn - w1n) // 7
      else
        w, nw = (o - w1c) // 7 + 1, (w1n - w1c) // 7
      end
      if not (bywno[w] or bywno[w - nw - 1]) then return false end
    end
    return true
  end

  -- Period state, positioned at the period containing from_day.
  local T = from_day and from_day > d0 and from_day or d0
  local py, pm, pd -- year / month / day-number cursor
  if f == YEARLY then
    local ty = civil_from_days(T)
    py = y0 + math.max(0, (ty - y0) // I) * I
  elseif f == MONTHLY then
    local ty, tm = civil_from_days(T)
    local mi = (y0 * 12 + m0 - 1) + math.max(0, ((ty * 12 + tm - 1) - (y0 * 12 + m0 - 1)) // I) * I
    py, pm = mi // 12, mi % 12 + 1
  elseif f == WEEKLY then
    local ws0 = d0 - (wd0 - wkst) % 7
    local wsT = T - ((T + 3) % 7 - wkst) % 7
    pd = ws0 + math.max(0, (wsT - ws0) // (7 * I)) * 7 * I
  elseif f == DAILY then
    pd = d0 + math.max(0, (T - d0) // I) * I
  else
    pd = T
  end

  -- Scan limits: stop 400 years after the last emission, past 9999, or a day
  -- after UNTIL (in wall time; the exact check is per occurrence).
  local ut = r.until_
  local until_wall = ut and ut.wall
  local until_utc = ut and ut.epoch
  local stop_day = MAX_DAY
  if until_wall then stop_day = math.min(stop_day, until_wall // 86400 + 1) end
  if until_utc then stop_day = math.min(stop_day, to_wall(until_utc, zone) // 86400 + 1) end
  local quiet_from = T

  local buf, bn, bi = {}, 0, 1
  local dayl, dn = {}, 0

  -- Fast path: when BYMONTHDAY is the only day filter (besides BYMONTH), add
  -- the month's matching days directly instead of testing every day.
  local mday_list = (bymd and not wdset and not nwd and not byyd and not bywno) and {} or nil
  if mday_list then
    for v in pairs(bymd) do mday_list[#mday_list + 1] = v end
  end
  local function add_month_days(first, last)
    local n0 = dn
    for i = 1, #mday_list do
      local v = mday_list[i]
      local j = v > 0 and first + v - 1 or last + v + 1
      if j >= first and j <= last then
        local dup = false
        for q = n0 + 1, dn do if dayl[q] == j then dup = true break end end
        if not dup then
          -- insertion into the sorted tail dayl[n0+1..dn]
          local q = dn
          while q > n0 and dayl[q] > j do
            dayl[q + 1] = dayl[q]
            q = q - 1
          end
          dayl[q + 1] = j
          dn = dn + 1
        end
      end
    end
  end

  -- Emit the days of dayl x group into buf, honouring BYSETPOS.
  local function emit_days()
    if setpos then
      local k = setpos_pick(setpos, dn * ng, pick)
      for i = 1, k do
        local idx = pick[i]
        bn = bn + 1
        buf[bn] = (yo + dayl[idx // ng + 1] - 1) * 86400 + group[idx % ng + 1]
      end
    else
      for i = 1, dn do
        local base = (yo + dayl[i] - 1) * 86400
        for t = 1, ng do
          bn = bn + 1
          buf[bn] = base + group[t]
        end
      end
    end
  end

  -- Fill buf with the next period's wall times; false when the rule ended.
  local function fill()
    bn, bi, dn = 0, 1, 0
    local start_day
    if f == YEARLY then
      start_day = days_from_civil(py, 1, 1)
    elseif f == MONTHLY then
      start_day = days_from_civil(py, pm, 1)
    else
      start_day = pd
    end
    if start_day > stop_day or start_day - quiet_from > LIMIT_DAYS then return false end

    if f == YEARLY then
      set_year(py)
      if months then
        for _, m in ipairs(months) do
          if mday_list then
            add_month_days(MS[m], ME[m])
          else
            for j = MS[m], ME[m] do
              if day_ok(j) then dn = dn + 1; dayl[dn] = j end
            end
          end
        end
      else
        for j = 1, ylen do
          if day_ok(j) then dn = dn + 1; dayl[dn] = j end
        end
      end
      emit_days()
      py = py + I
    elseif f == MONTHLY then
      if py ~= cy then set_year(py) end
      if not bymonth or bymonth[pm] then
        local first, last = MS[pm], ME[pm]
        if nwd then
          gen = gen + 1
          mark_nwd(first, last)
        end
        if mday_list then
          add_month_days(first, last)
        else
          for j = first, last do
            if day_ok(j) then dn = dn + 1; dayl[dn] = j end
          end
        end
        emit_days()
      end
      pm = pm + I
      if pm > 12 then
        py = py + (pm - 1) // 12
        pm = (pm - 1) % 12 + 1
      end
    elseif f == WEEKLY then
      ensure_year(pd)
      local j0 = pd - yo + 1
      local jfirst = j0
      -- Like dateutil, the first week runs from DTSTART, not from its week
      -- start, so BYSETPOS there counts from DTSTART.
      if pd < d0 then jfirst = d0 - yo + 1 end
      for j = jfirst, j0 + 6 do
        if day_ok(j) then dn = dn + 1; dayl[dn] = j end
      end
      emit_days()
      pd = pd + 7 * I
    elseif f == DAILY then
      ensure_year(pd)
      local j = pd - yo + 1
      if day_ok(j) then
        dn = 1
        dayl[1] = j
        emit_days()
      end
      pd = pd + I
    else
      local o = pd
      ensure_year(o)
      if day_ok(o - yo + 1) then
        local dbase = o * 86400
        if f == HOURLY then
          for h = (h0 - (o - d0) * 24) % I, 23, I do
            if not byhour or byhour[h] then
              local base = dbase + h * 3600
              for t = 1, ng do
                bn = bn + 1
                buf[bn] = base + group[t]
              end
            end
          end
        else
          local t = (h0 * 60 + mi0 - (o - d0) * 1440) % I
          while t < 1440 do
            local h = t // 60
            if byhour and not byhour[h] then
              t = t + ((h + 1) * 60 - t + I - 1) // I * I
            else
              if not byminute or byminute[t % 60] then
                local base = dbase + t * 60
                for k = 1, ng do
                  bn = bn + 1
                  buf[bn] = base + group[k]
                end
              end
              t = t + I
            end
          end
        end
      end
      pd = pd + 1
    end
    return true
  end

  -- HOURLY/MINUTELY with BYHOUR/BYMINUTE the INTERVAL never reaches: empty
  -- (scanning would take 400 years of days to find out).
  local function gcd(a, b)
    while b ~= 0 do a, b = b, a % b end
    return a
  end
  if f >= HOURLY and (byhour or (f == MINUTELY and byminute)) then
    local reach = false
    if f == HOURLY then
      local g = gcd(I, 24)
      for h in pairs(byhour) do
        if (h - h0) % g == 0 then reach = true end
      end
    else
      local g, t0 = gcd(I, 1440), h0 * 60 + mi0
      for t = t0 % g, 1439, g do
        if (not byhour or byhour[t // 60]) and (not byminute or byminute[t % 60]) then
          reach = true
          break
        end
      end
    end
    if not reach then return function() return nil end end
  end

  local left = r.count
  local last = math.mininteger
  local finished = false

  return function()
    if finished then return nil end
    while true do
      if bi > bn then
        if not fill() then
          finished = true
          return nil
        end
      else
        local w = buf[bi]
        bi = bi + 1
        if w >= w0 then
          if until_wall and w > until_wall then finished = true return nil end
          local t = from_wall(w, zone)
          if until_utc and t > until_utc then finished = true return nil end
          if left then
            left = left - 1
            if left < 0 then finished = true return nil end
          end
          if t > last then
            last = t
            quiet_from = w // 86400
            return t
          end
        end
      end
    end
  end
end

local function check_args(dtstart, zone, level)
  if math.type(dtstart) ~= "integer" then error("dtstart must be an integer epoch", level) end
  if type(zone) ~= "string" then error("zone must be a string", level) end
  if not tz.valid(zone) then return nil, "unknown time zone '" .. zone .. "'" end
  return true
end

--- Iterate the occurrences of a rule.
-- @tparam string|table rule rule text or a rule from parse
-- @tparam integer dtstart first due time (epoch seconds)
-- @tparam string zone IANA zone the rule is evaluated in
-- @tparam[opt] integer after only occurrences strictly after this epoch
-- @treturn[1] function iterator giving epochs in increasing order, then nil
-- @treturn[2] nil
-- @treturn[2] string what is wrong with the rule or zone
function M.iter(rule, dtstart, zone, after)
  local r, err = get_rule(rule)
  if not r then return nil, err end
  local ok, zerr = check_args(dtstart, zone, 3)
  if not ok then return nil, zerr end
  if after ~= nil and math.type(after) ~= "integer" then error("after must be an integer epoch", 2) end
  local from_day
  if after and not r.count then from_day = to_wall(after, zone) // 86400 - 2 end
  local gen = generator(r, dtstart, zone, from_day)
  if not after then return gen end
  return function()
    while true do
      local t = gen()
      if t == nil or t > after then return t end
    end
  end
end

--- The first occurrence after a given instant.
-- @tparam string|table rule rule text or a rule from parse
-- @tparam integer dtstart first due time (epoch seconds)
-- @tparam string zone IANA zone
-- @tparam integer after epoch seconds
-- @tparam[opt] boolean inclusive also accept an occurrence at `after`
-- @treturn[1] integer the next occurrence (epoch seconds)
-- @treturn[2] nil when the rule has no occurrence after it (no message), or
-- @treturn[2] string a message when the rule or zone is invalid
function M.next_after(rule, dtstart, zone, after, inclusive)
  if math.type(after) ~= "integer" then error("after must be an integer epoch", 2) end
  local it, err = M.iter(rule, dtstart, zone, inclusive and after - 1 or after)
  if not it then return nil, err end
  return it()
end

--- Expand a rule into a list of occurrences.
-- @tparam string|table rule rule text or a rule from parse
-- @tparam integer dtstart first due time (epoch seconds)
-- @tparam string zone IANA zone
-- @tparam integer limit most occurrences to return
-- @tparam[opt] integer after only occurrences strictly after this epoch
-- @treturn[1] {integer,...} epochs in increasing order (possibly empty)
-- @treturn[2] nil
-- @treturn[2] string what is wrong with the rule or zone
function M.expand(rule, dtstart, zone, limit, after)
  if math.type(limit) ~= "integer" or limit < 0 then error("limit must be a non-negative integer", 2) end
  local it, err = M.iter(rule, dtstart, zone, after)
  if not it then return nil, err end
  local out = {}
  for i = 1, limit do
    local t = it()
    if not t then break end
    out[i] = t
  end
  return out
end

M.WEEKDAY_NAMES = cal.WDNAME
M.MONTH_NAMES = cal.MONTH_NAME

return M
