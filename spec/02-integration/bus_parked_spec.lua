-- One user's failing event never holds up other users' events on the same bus partition
-- (issue 19; BUS=postgres, lua/bus/drivers/postgres.lua): the failing event is parked
-- aside (bus_parked) with the later events of its key, which keep their order, while the
-- partition's other keys go on; the parked event is retried with its backoff and
-- dead-lettered after max_attempts, then its key's waiting events run.
local h = require "spec.helpers"
local outbox = require "bus.outbox"

describe("bus: a failing event is parked, its partition goes on", function()
  local host

  setup(function()
    host = h.start { bundles = { "services/api", "spec/fixtures/parking-consumer" },
      env = { BUS_POLL_SECONDS = 0.5 } }
  end)

  teardown(function()
    if host then host:stop() end
  end)

  local function sql(q) return h.psql(q, host.database_url) end

  local function create(user, title)
    local status, task = host:request("POST", "/api/tasks", { token = h.token(user), body = { title = title } })
    assert.are.equal(201, status)
    return task
  end

  -- Two user ids that share a partition.
  local function same_partition()
    local base = "parker-" .. os.time() .. "-" .. math.random(1e6)
    local a = base .. "-a"
    for i = 1, 1000 do
      local b = base .. "-b" .. i
      if outbox.partition(b) == outbox.partition(a) then return a, b end
    end
    error("no two keys on one partition")
  end

  it("handles another user's events at once while one user's event fails and retries", function()
    local alice, bob = same_partition()
    create(alice, "fail: this one the handler refuses")
    create(alice, "alice after the failure")
    local t0 = os.time()
    create(bob, "bob, same partition")
    -- bob's event is not held up by alice's retries (2.5 s, then 5 s, then dead letter)
    local bob_done = h.eventually(function()
      return sql("SELECT count(*) FROM fxp_effects WHERE user_id = '" .. bob .. "'") == "1"
    end, 2)
    assert.is_truthy(bob_done, "bob's event waited behind alice's failing one")
    assert.is_true(tonumber(sql("SELECT max(lag_ms) FROM fxp_effects WHERE user_id = '" .. bob .. "'")) < 2000)
    -- alice's failing event is parked, and her next event waits behind it (her order)
    assert.are.equal("2", sql("SELECT count(*) FROM bus_parked WHERE grp = 'fx-park' AND key = '" .. alice .. "'"))
    assert.are.equal("0", sql("SELECT count(*) FROM fxp_effects WHERE user_id = '" .. alice .. "'"))
    -- the cursor went on: the group is caught up with the log
    assert.are.equal("0", sql([[SELECT coalesce(sum(p.last_seq - c.seq), 0) FROM bus_cursors c
      JOIN bus_partitions p USING (topic, part) WHERE c.grp = 'fx-park']]))
    -- retried with its backoff, then dead-lettered; then alice's next event runs
    local dead = h.eventually(function()
      return sql("SELECT count(*) FROM bus_dead_letters WHERE grp = 'fx-park'") == "1"
    end, 15)
    assert.is_truthy(dead, "the failing event was not dead-lettered")
    assert.are.equal("3", sql("SELECT attempts FROM bus_dead_letters WHERE grp = 'fx-park'"))
    assert.is_true(os.time() - t0 >= 6, "dead-lettered before its retries")
    assert.is_truthy(h.eventually(function()
      return sql("SELECT count(*) FROM fxp_effects WHERE user_id = '" .. alice .. "'") == "1"
    end, 3), "alice's next event did not run after the dead letter")
    assert.are.equal("0", sql("SELECT count(*) FROM bus_parked"))
    assert.are.equal("0", sql("SELECT coalesce(sum(parked), 0) FROM bus_cursors WHERE grp = 'fx-park'"))
  end)
end)
