-- A new value of kiln.dev/revalidate reruns the instance's GPU validation
-- (DESIGN.md section 5).
local os = require("os")
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["kiln.dev/revalidate"] = os.date("!%Y-%m-%dT%XZ")
return obj
