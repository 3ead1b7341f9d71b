-- Argo CD health check for every entente.dev kind. Install it under
-- resource.customizations.health.entente.dev_<Kind> in argocd-cm (see
-- README.md beside this file). It reads only the standard status every Entente
-- kind carries: observedGeneration and the Ready/Reconciling/Degraded conditions.
local hs = {}

local function condition(obj, type)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

if obj.status == nil or obj.status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe this resource"
  return hs
end

if obj.metadata.generation ~= nil and obj.status.observedGeneration < obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. obj.metadata.generation
  return hs
end

local degraded = condition(obj, "Degraded")
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = (degraded.reason or "Degraded") .. ": " .. (degraded.message or "")
  return hs
end

local ready = condition(obj, "Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or "Ready"
  return hs
end

local reconciling = condition(obj, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = reconciling.message or "Reconciling"
  return hs
end

if ready ~= nil and ready.reason == "NotImplemented" then
  -- Honest status from an operator that does not build this kind yet.
  hs.status = "Suspended"
  hs.message = ready.message or "Not implemented by this operator version"
  return hs
end

hs.status = "Progressing"
hs.message = (ready and ready.message) or "Not ready yet"
return hs
