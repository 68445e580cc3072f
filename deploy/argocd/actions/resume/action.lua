-- Removing the annotation resumes reconciliation (the patch Argo CD sends
-- deletes the key).
if obj.metadata.annotations ~= nil then
  obj.metadata.annotations["kiln.dev/reconcile"] = nil
end
return obj
