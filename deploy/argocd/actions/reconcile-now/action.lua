-- Any change to an object's metadata reaches kiln through its watch, and kiln
-- reconciles the object; the annotation records when it was asked for.
local os = require("os")
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["kiln.dev/reconcile-requested-at"] = os.date("!%Y-%m-%dT%XZ")
return obj
