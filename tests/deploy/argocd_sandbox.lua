-- Runs one Argo CD resource-customization script under Debian's lua5.1 with
-- the libraries Argo CD gives scripts from argocd-cm without useOpenLibs
-- (reference/argocd.md 1.3): base functions, table, package/require, and an
-- os that has only time and date. No string, math, io, coroutine or debug, and
-- no string methods either: gopher-lua installs those with its string library.
--
-- usage: lua5.1 argocd_sandbox.lua SCRIPT [NOW] < OBJECT
--   OBJECT is a Lua expression (the live object as nested tables; the runner,
--   run_argocd_lua_tests.py, writes it). It becomes the global `obj`.
--   NOW (seconds since the epoch) fixes os.time() so that actions that stamp
--   a time are reproducible.
-- Output: the script's result as JSON on stdout, or "error: ..." on stderr and
-- exit status 1.

local script_path, now = arg[1], tonumber(arg[2])
local str, real_os, real_debug = string, os, debug

local function fail(msg)
    io.stderr:write("error: " .. tostring(msg) .. "\n")
    os.exit(1)
end

local input = io.read("*a")
local load_obj, err = loadstring("return " .. input, "=object")
if not load_obj then fail(err) end
local obj = load_obj()

local chunk
chunk, err = loadfile(script_path)
if not chunk then fail(err) end

local safe_os = {
    time = function(t)
        if t == nil and now ~= nil then return now end
        return real_os.time(t)
    end,
    date = function(fmt, t)
        if t == nil and now ~= nil then t = now end
        return real_os.date(fmt, t)
    end,
}

local env = {obj = obj, _VERSION = _VERSION}
for _, name in ipairs({"assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall",
                       "rawequal", "rawget", "rawset", "select", "setmetatable", "tonumber",
                       "tostring", "type", "unpack", "xpcall"}) do
    env[name] = _G[name]
end
env.table = {concat = table.concat, insert = table.insert, maxn = table.maxn,
             remove = table.remove, sort = table.sort}
env.os = safe_os
env.require = function(name)
    if name == "os" then return safe_os end
    error("module '" .. tostring(name) .. "' not found", 2)
end
env._G = env
setfenv(chunk, env)

-- Argo CD gives every script 1 s; an instruction budget stands in for it.
local budget_hit = false
real_debug.sethook(function()
    budget_hit = true
    error("script exceeded its time budget")
end, "", 10000000)
local string_mt = getmetatable("")
local string_index = string_mt.__index
string_mt.__index = nil
local ok, result = pcall(chunk)
string_mt.__index = string_index
real_debug.sethook()
if budget_hit or not ok then fail(result) end

-- JSON out. A table whose keys are exactly 1..n is an array; an empty table
-- is an object (the runner treats {} and [] alike).
local function encode(v, out)
    local t = type(v)
    if t == "nil" then
        out[#out + 1] = "null"
    elseif t == "boolean" then
        out[#out + 1] = tostring(v)
    elseif t == "number" then
        if v == math.floor(v) and v > -1e15 and v < 1e15 then
            out[#out + 1] = str.format("%d", v)
        else
            out[#out + 1] = str.format("%.17g", v)
        end
    elseif t == "string" then
        out[#out + 1] = '"' .. str.gsub(v, '[%c"\\]', function(c)
            return str.format("\\u%04x", str.byte(c))
        end) .. '"'
    elseif t == "table" then
        local n = #v
        local count = 0
        for _ in pairs(v) do count = count + 1 end
        if n > 0 and count == n then
            out[#out + 1] = "["
            for i = 1, n do
                if i > 1 then out[#out + 1] = "," end
                encode(v[i], out)
            end
            out[#out + 1] = "]"
        else
            local keys = {}
            for k in pairs(v) do keys[#keys + 1] = tostring(k) end
            table.sort(keys)
            out[#out + 1] = "{"
            for i, k in ipairs(keys) do
                if i > 1 then out[#out + 1] = "," end
                encode(k, out)
                out[#out + 1] = ":"
                local val = v[k]
                if val == nil then val = v[tonumber(k)] end
                encode(val, out)
            end
            out[#out + 1] = "}"
        end
    else
        fail("cannot encode a " .. t)
    end
end

local out = {}
encode(result, out)
io.write(table.concat(out), "\n")
