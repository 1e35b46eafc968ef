-- `make eval-chat`: runs the evaluation set and prints accuracy per intent and every
-- failure (through `todo-host script`, which gives the tz and json primitives).
package.path = "./?.lua;./lua/?.lua;./lua/?/init.lua;" .. package.path
local eval = require "spec.chat.eval"
local report = eval.run(require "spec.chat.eval_cases")
print(eval.format(report))
