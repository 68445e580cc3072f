-- Health of every kiln.dev kind: ResourceGraphDefinitions and the instances of
-- every kind an RGD generates (they share the group, so one wildcard entry
-- covers kinds that do not exist yet).
--
-- The instance status is kstatus-compliant (status.observedGeneration, and the
-- conditions Ready / Reconciling / Stalled with their own observedGeneration),
-- so this follows kstatus: Stalled=True is the only Degraded, because a
-- Degraded resource fails a multi-wave sync and GPU stacks are often not ready
-- for a while (image pulls, model downloads) without anything being wrong.
--
-- Written for the scripts argocd-cm runs without useOpenLibs: base functions,
-- table and a safe os only. No string library and no string methods, so text is
-- joined with `..` and nothing is searched or formatted.

local hs = {status = "Progressing", message = "Waiting for kiln to report status"}

local function condition(conds, kind)
  if conds == nil then
    return nil
  end
  for _, c in ipairs(conds) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function text(c, fallback)
  if c ~= nil then
    if c.message ~= nil and c.message ~= "" then
      return c.message
    end
    if c.reason ~= nil and c.reason ~= "" then
      return c.reason
    end
  end
  return fallback
end

local meta = obj.metadata or {}
local status = obj.status

-- Argo CD reports a deleting object as Progressing before it runs a health
-- script; the same answer here keeps the script right on its own.
if meta.deletionTimestamp ~= nil then
  hs.message = "Pending deletion"
  if status ~= nil then
    local ready = condition(status.conditions, "Ready")
    if ready ~= nil and ready.status ~= "True" then
      hs.message = "Pending deletion: " .. text(ready, "")
    end
  end
  return hs
end

-- kiln.dev/reconcile: suspended pauses an instance. It wins over a stale
-- generation: a paused instance never catches up, and a sync should not wait
-- for it.
if meta.annotations ~= nil and meta.annotations["kiln.dev/reconcile"] == "suspended" then
  hs.status = "Suspended"
  hs.message = "Reconciliation suspended (kiln.dev/reconcile: suspended)"
  return hs
end

if status == nil or status.conditions == nil then
  return hs
end

-- kstatus: a top-level observedGeneration behind metadata.generation means
-- the controller has not seen the latest spec, whatever the conditions say.
local gen = meta.generation
if gen ~= nil and status.observedGeneration ~= nil and status.observedGeneration < gen then
  hs.message = "Waiting for kiln to observe generation " .. tostring(gen)
    .. " (status is for " .. tostring(status.observedGeneration) .. ")"
  return hs
end

local conds = status.conditions
local ready = condition(conds, "Ready")
local stalled = condition(conds, "Stalled")
local reconciling = condition(conds, "Reconciling")

-- An RGD whose graph does not compile keeps serving its last good graph, but
-- the change in Git was refused: that has to fail the sync.
if obj.kind == "ResourceGraphDefinition" then
  local accepted = condition(conds, "GraphAccepted")
  if accepted ~= nil and accepted.status == "False" then
    hs.status = "Degraded"
    hs.message = text(accepted, "Graph not accepted")
    return hs
  end
end

if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = text(stalled, "Stalled")
  return hs
end

-- kiln writes Reconciling=True with an empty message and says what it waits
-- for in Ready's ("deployment: ... is false"), so a silent Reconciling falls
-- back to a Ready that is not True.
if reconciling ~= nil and reconciling.status == "True" then
  local why = reconciling
  if (reconciling.message == nil or reconciling.message == "") and ready ~= nil
      and ready.status ~= "True" then
    why = ready
  end
  hs.message = text(why, "Reconciling")
  return hs
end

if ready == nil then
  hs.message = "Waiting for the Ready condition"
  return hs
end

-- kubectl wait's rule: a condition written for an older generation does not
-- count yet.
if gen ~= nil and ready.observedGeneration ~= nil and ready.observedGeneration < gen then
  hs.message = "Waiting for kiln to observe generation " .. tostring(gen)
  return hs
end

if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = text(ready, "Ready")
  return hs
end

-- Ready False or Unknown without Stalled: still converging.
hs.message = text(ready, "Not ready")
return hs
