-- argoproj.io/Application: Argo CD has had no built-in health for Applications
-- since 1.8, so in an app-of-apps the child Applications have no health and
-- the parent's sync waves do not wait for them. This reports a child's own
-- health (what Argo CD computed for its resources, kiln instances included),
-- and Progressing while a sync of it is still running.
local hs = {status = "Progressing", message = "Waiting for the Application to report health"}
local st = obj.status
if st == nil or st.health == nil or st.health.status == nil then
  return hs
end
if st.operationState ~= nil and st.operationState.phase == "Running" then
  hs.message = "Sync is running"
  return hs
end
hs.status = st.health.status
hs.message = st.health.message or ""
return hs
