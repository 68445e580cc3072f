-- kiln.dev/reconcile: suspended pauses the instance: kiln leaves its children
-- as they are until the annotation goes away.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["kiln.dev/reconcile"] = "suspended"
return obj
