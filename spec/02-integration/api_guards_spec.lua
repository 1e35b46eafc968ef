-- Task API behaviours that the rest of the suite let through under mutation (issue 13):
-- If-None-Match answers 304 only for the task's own version (or *), the bulk filter's
-- 1,000-task cap, and sort=title ordering by title rather than by creation.
local h = require "spec.helpers"

local uid = h.uid

describe("Task API guards", function()
  local host

  lazy_setup(function() host = h.start({ bundles = { "services/api" } }) end)
  lazy_teardown(function() if host then host:stop() end end)

  local function create(token, body)
    local status, task = host:request("POST", "/api/tasks", { token = token, body = body })
    assert.are.equal(201, status)
    return task
  end

  it("If-None-Match: 304 only for the current version or *", function()
    local token = h.token(uid("inm"))
    local t = create(token, { title = "cached" })
    assert.are.equal(200, (host:request("PATCH", "/api/tasks/" .. t.id, { token = token, body = { title = "v2" } })))
    local function get(inm)
      return host:request("GET", "/api/tasks/" .. t.id, { token = token, headers = { ["If-None-Match"] = inm } })
    end
    for _, stale in ipairs { '"1"', '"3"', 'W/"1"', '"1", "7"', "garbage", '""' } do
      local status, body = get(stale)
      assert.are.equal(200, status, stale)
      assert.are.equal("v2", body.title)
    end
    for _, fresh in ipairs { '"2"', 'W/"2"', '"1", "2"', "*" } do
      assert.are.equal(304, (get(fresh)), fresh)
    end
  end)

  it("bulk by filter: 1,000 tasks are fine, 1,001 are refused with too_many and nothing changes", function()
    local user = uid("cap")
    local token = h.token(user)
    h.psql("INSERT INTO tasks (user_id, title) SELECT '" .. user .. "', 'capped ' || g "
      .. "FROM generate_series(1, 1000) g", host.database_url)
    local status, body = host:request("POST", "/api/tasks/bulk",
      { token = token, body = { action = "complete", filter = { status = "pending" } } })
    assert.are.equal(200, status)
    assert.are.equal(1000, body.changed)
    h.psql("INSERT INTO tasks (user_id, title) SELECT '" .. user .. "', 'over ' || g "
      .. "FROM generate_series(1, 1001) g", host.database_url)
    status, body = host:request("POST", "/api/tasks/bulk",
      { token = token, body = { action = "complete", filter = { status = "pending" } } })
    assert.are.equal(422, status)
    assert.are.equal("too_many", body.error.code)
    assert.are.equal("0", h.psql("SELECT count(*) FROM tasks WHERE user_id = '" .. user
      .. "' AND title LIKE 'over %' AND completed", host.database_url))
  end)

  it("sort=title orders by title, not by creation", function()
    local token = h.token(uid("titles"))
    for _, title in ipairs { "mike", "alpha", "zulu", "kilo", "charlie" } do create(token, { title = title }) end
    local function titles(query)
      local status, page = host:request("GET", "/api/tasks?" .. query, { token = token })
      assert.are.equal(200, status)
      local out = {}
      for i, t in ipairs(page.items) do out[i] = t.title end
      return out
    end
    assert.are.same({ "alpha", "charlie", "kilo", "mike", "zulu" }, titles("sort=title"))
    assert.are.same({ "zulu", "mike", "kilo", "charlie", "alpha" }, titles("sort=title&order=desc"))
    -- page by page too
    assert.are.same({ "alpha", "charlie" }, titles("sort=title&limit=2"))
  end)
end)
