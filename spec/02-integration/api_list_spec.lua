-- GET /api/tasks through HTTP: every filter and sort alone and combined, keyset
-- pagination while tasks are being added, and list parameter validation.
local h = require "spec.helpers"

local uid = h.uid

describe("Task API: lists", function()
  local host, token, ids

  local function post(body)
    local status, task = host:request("POST", "/api/tasks", { token = token, body = body })
    assert.are.equal(201, status, type(task) == "table" and task.error and task.error.message)
    return task
  end

  local function list(query)
    local status, body = host:request("GET", "/api/tasks" .. (query and ("?" .. query) or ""), { token = token })
    assert.are.equal(200, status, type(body) == "table" and body.error and body.error.message)
    return body
  end

  local function titles(query)
    local out = {}
    for i, t in ipairs(list(query).items) do out[i] = t.title end
    return out
  end

  local function set(query)
    local out = titles(query)
    table.sort(out)
    return out
  end

  lazy_setup(function()
    host = h.start({ bundles = { "services/api" } })
    token = h.token(uid("lister"))
    ids = {}
    -- A fixed set: due dates relative to a far past / far future so "overdue" is stable.
    local fixtures = {
      { title = "alpha", priority = "high", tags = { "work" }, due_at = "2020-01-01T09:00:00Z",
        description = "quarterly report draft" },
      { title = "bravo", priority = "low", tags = { "home" }, due_at = "2099-01-01T09:00:00Z" },
      { title = "charlie", priority = "medium", tags = { "work", "urgent" }, due_at = "2099-06-01T09:00:00Z",
        description = "report to the board" },
      { title = "delta", priority = "none", tags = {} },
      { title = "echo report", priority = "high", tags = { "home", "urgent" }, due_at = "2020-06-01T09:00:00Z",
        completed = true },
      { title = "Foxtrot", priority = "low", tags = { "work" } },
    }
    for _, f in ipairs(fixtures) do ids[f.title] = post(f).id end
  end)

  lazy_teardown(function() if host then host:stop() end end)

  it("lists everything by default, newest first", function()
    local body = list()
    assert.are.equal(6, #body.items)
    assert.is_true(type(body.next_cursor) ~= "string")
    assert.are.same({ "Foxtrot", "echo report", "delta", "charlie", "bravo", "alpha" }, titles())
  end)

  describe("filters", function()
    it("status", function()
      assert.are.same({ "echo report" }, set("status=completed"))
      assert.are.same({ "Foxtrot", "alpha", "bravo", "charlie", "delta" }, set("status=pending"))
      assert.are.equal(6, #titles("status=all"))
    end)

    it("priority, one or more", function()
      assert.are.same({ "alpha", "echo report" }, set("priority=high"))
      assert.are.same({ "Foxtrot", "alpha", "bravo", "echo report" }, set("priority=high&priority=low"))
      assert.are.same({ "Foxtrot", "alpha", "bravo", "echo report" }, set("priority=high,low"))
    end)

    it("tag with tags_mode any and all", function()
      assert.are.same({ "Foxtrot", "alpha", "charlie" }, set("tag=work"))
      assert.are.same({ "Foxtrot", "alpha", "charlie", "echo report" }, set("tag=work&tag=urgent"))
      assert.are.same({ "charlie" }, set("tag=work&tag=urgent&tags_mode=all"))
      assert.are.same({ "Foxtrot", "alpha", "charlie" }, set("tag=WORK"))
    end)

    it("due_before and due_after", function()
      assert.are.same({ "alpha", "echo report" }, set("due_before=2021-01-01T00:00:00Z"))
      assert.are.same({ "bravo", "charlie" }, set("due_after=2021-01-01T00:00:00%2B00:00"))
      assert.are.same({ "echo report" },
        set("due_after=2020-01-01T09:00:01Z&due_before=2099-01-01T09:00:00Z"))
    end)

    it("overdue", function()
      assert.are.same({ "alpha" }, set("overdue=true"))
      assert.are.same({ "Foxtrot", "bravo", "charlie", "delta", "echo report" }, set("overdue=false"))
    end)

    it("q: full-text over title and description, ranked", function()
      assert.are.same({ "alpha", "charlie", "echo report" }, set("q=report"))
      local ranked = titles("q=report")
      assert.are.equal("echo report", ranked[1]) -- title matches outrank description matches
      assert.are.same({ "alpha" }, set("q=quarterly%20draft"))
      assert.are.same({}, set("q=nothing-like-this"))
    end)

    it("combined", function()
      assert.are.same({ "charlie" }, set("status=pending&tag=urgent&priority=medium,high"))
      assert.are.same({ "alpha" }, set("q=report&priority=high&status=pending"))
      assert.are.same({ "alpha" }, set("tag=work&due_before=2050-01-01T00:00:00Z&overdue=true"))
      assert.are.same({}, set("status=completed&tag=work"))
    end)
  end)

  describe("sorts", function()
    it("due: soonest first, tasks without a due date last in both orders", function()
      assert.are.same({ "alpha", "echo report", "bravo", "charlie" }, { table.unpack(titles("sort=due"), 1, 4) })
      local asc = titles("sort=due&order=asc")
      local last = { asc[5], asc[6] }
      table.sort(last, function(a, b) return a:lower() < b:lower() end)
      assert.are.same({ "delta", "Foxtrot" }, last)
      local desc = titles("sort=due&order=desc")
      assert.are.same({ "charlie", "bravo", "echo report", "alpha" }, { table.unpack(desc, 1, 4) })
    end)

    it("priority: by meaning, high first by default", function()
      local got = list("sort=priority").items
      local rank = { high = 3, medium = 2, low = 1, none = 0 }
      for i = 2, #got do assert.is_true(rank[got[i - 1].priority] >= rank[got[i].priority]) end
      assert.are.equal("none", list("sort=priority&order=asc").items[1].priority)
    end)

    it("created and updated", function()
      assert.are.same({ "alpha", "bravo", "charlie", "delta", "echo report", "Foxtrot" },
        titles("sort=created&order=asc"))
      host:request("PATCH", "/api/tasks/" .. ids.bravo, { token = token, body = { description = "touched" } })
      assert.are.equal("bravo", titles("sort=updated")[1])
      assert.are.equal("bravo", titles("sort=updated&order=desc")[1])
      assert.are_not.equal("bravo", titles("sort=updated&order=asc")[1])
    end)

    it("title", function()
      local asc = titles("sort=title")
      assert.are.equal(6, #asc)
      local desc = titles("sort=title&order=desc")
      for i = 1, 6 do assert.are.equal(asc[i], desc[7 - i]) end
    end)

    it("sort with filters", function()
      assert.are.same({ "alpha", "charlie", "Foxtrot" }, titles("tag=work&sort=priority"))
      assert.are.same({ "alpha", "charlie", "Foxtrot" }, titles("tag=work&sort=due"))
    end)
  end)

  describe("pagination", function()
    local function walk(query, limit, between)
      local seen, order, cursor, pages = {}, {}, nil, 0
      repeat
        local q = query .. "&limit=" .. limit .. (cursor and ("&cursor=" .. cursor) or "")
        local body = list(q)
        pages = pages + 1
        for _, t in ipairs(body.items) do
          assert.is_nil(seen[t.id], "repeated " .. t.title .. " on page " .. pages)
          seen[t.id] = true
          order[#order + 1] = t.title
        end
        cursor = type(body.next_cursor) == "string" and body.next_cursor or nil
        if between then between(pages) end
        assert.is_true(pages < 100)
      until not cursor
      return order, seen
    end

    for _, sort in ipairs({ "created", "updated", "due", "priority", "title" }) do
      for _, order in ipairs({ "asc", "desc" }) do
        it("walks sort=" .. sort .. "&order=" .. order .. " without skips or repeats", function()
          local full = titles("sort=" .. sort .. "&order=" .. order .. "&limit=200")
          local paged = walk("sort=" .. sort .. "&order=" .. order, 2)
          assert.are.same(full, paged)
        end)
      end
    end

    it("never skips or repeats an existing task while tasks are added", function()
      local before = {}
      for _, t in ipairs(list("limit=200").items) do before[t.id] = true end
      local added = 0
      for _, sort in ipairs({ "created", "due", "priority", "title" }) do
        local _, seen = walk("sort=" .. sort, 2, function(page)
          added = added + 1
          post({ title = "added " .. added .. " on page " .. page, priority = "medium",
            due_at = "2050-01-01T00:00:00Z", tags = { "added" } })
        end)
        for id in pairs(before) do assert.is_true(seen[id], "skipped " .. id .. " in sort " .. sort) end
      end
      -- clean up the extra tasks for the other tests
      local status = host:request("POST", "/api/tasks/bulk", { token = token,
        body = { action = "delete", filter = { tag = "added" } } })
      assert.are.equal(200, status)
    end)

    it("paginates search results", function()
      local full = titles("q=report&limit=200")
      assert.are.same(full, walk("q=report", 1))
    end)

    it("defaults to 50 and caps at 200", function()
      local status, body = host:request("GET", "/api/tasks?limit=201", { token = token })
      assert.are.equal(422, status)
      assert.are.equal("limit", body.error.field)
      assert.are.equal(1, #list("limit=1").items)
      assert.is_string(list("limit=1").next_cursor)
    end)

    it("rejects a tampered cursor or one made for another sort", function()
      local cursor = list("limit=1").next_cursor
      local status, body = host:request("GET", "/api/tasks?limit=1&cursor=" .. cursor .. "x", { token = token })
      assert.are.equal(422, status)
      assert.are.equal("cursor", body.error.field)
      status, body = host:request("GET", "/api/tasks?sort=title&limit=1&cursor=" .. cursor, { token = token })
      assert.are.equal(422, status)
      assert.are.equal("cursor", body.error.field)
      status = host:request("GET", "/api/tasks?cursor=garbage", { token = token })
      assert.are.equal(422, status)
      -- another user cannot use it
      status = host:request("GET", "/api/tasks?limit=1&cursor=" .. cursor, { token = h.token(uid("other")) })
      assert.are.equal(422, status)
    end)
  end)

  describe("parameter validation", function()
    local cases = {
      { "status=done", "status" },
      { "priority=urgent", "priority" },
      { "priority=high,bogus", "priority" },
      { "tags_mode=some", "tags_mode" },
      { "due_before=tomorrow", "due_before" },
      { "due_after=2026-01-01", "due_after" },
      { "overdue=yes", "overdue" },
      { "sort=colour", "sort" },
      { "sort=relevance", "sort" },
      { "order=up", "order" },
      { "limit=0", "limit" },
      { "limit=-1", "limit" },
      { "limit=1e3", "limit" },
      { "limit=99999999999999999999", "limit" },
      { "colour=red", "colour" },
      { "q=" .. string.rep("x", 201), "q" },
      { "q=%00", "q" },
      { "q=%FF%FE", "q" },
      { "tag=" .. string.rep("t", 33), "tag" },
    }
    for _, c in ipairs(cases) do
      it("422 for " .. c[1]:sub(1, 40), function()
        local status, body = host:request("GET", "/api/tasks?" .. c[1], { token = token })
        assert.are.equal(422, status)
        assert.are.equal(c[2], body.error.field)
      end)
    end

    it("treats SQL in parameters as plain text", function()
      assert.are.same({}, titles("q=%27%3B%20DROP%20TABLE%20tasks%3B--"))
      assert.are.same({}, titles("tag=x%27)%20OR%201%3D1--"))
      assert.are.equal(6, #titles("limit=200"))
    end)
  end)
end)
