-- The offline assistant's evaluation set (spec/chat/eval_cases.lua) as a spec: at least
-- 300 utterances, at least 95% exactly right, and every origin example right.
-- `make eval-chat` prints the same run as a report.
local eval = require "spec.chat.eval"
local set = require "spec.chat.eval_cases"

describe("chat evaluation set", function()
  local report = eval.run(set)

  it("has at least 300 utterances", function()
    assert.is_true(report.total >= 300, "only " .. report.total .. " utterances")
  end)

  it("gets every origin example right", function()
    assert.is_true(report.origin_total >= 9)
    assert.same({}, report.origin_failures, eval.format(report))
  end)

  it("matches at least 95% of the expected tool calls exactly", function()
    local accuracy = report.passed / report.total
    assert.is_true(accuracy >= 0.95, string.format("accuracy %.1f%%\n%s", 100 * accuracy, eval.format(report)))
  end)
end)
