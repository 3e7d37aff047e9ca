-- Closed ranges of 64 KiB to 1 MiB at random offsets of a file of SIZE bytes.
-- Usage: wrk ... -s random-range.lua URL -- SIZE
local size
function init(args)
  size = tonumber(args[1])
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
end
function request()
  local len = math.random(65536, 1048576)
  local first = math.random(0, size - len)
  return wrk.format("GET", nil, { Range = "bytes=" .. first .. "-" .. (first + len - 1) })
end
