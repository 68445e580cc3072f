-- Resource actions for every kiln.dev kind. They write request annotations
-- only, never spec: spec comes from Git, and self-heal would revert it.
-- Same libraries as health.lua (no string library).
local actions = {}
actions["reconcile-now"] = {["iconClass"] = "fa fa-fw fa-redo", ["displayName"] = "Reconcile now"}
if obj.kind == "ResourceGraphDefinition" then
  return actions
end
local suspended = obj.metadata.annotations ~= nil
  and obj.metadata.annotations["kiln.dev/reconcile"] == "suspended"
actions["suspend"] = {["iconClass"] = "fa fa-fw fa-pause", ["displayName"] = "Suspend reconciliation",
                      ["disabled"] = suspended}
actions["resume"] = {["iconClass"] = "fa fa-fw fa-play", ["displayName"] = "Resume reconciliation",
                     ["disabled"] = not suspended}
actions["revalidate"] = {["iconClass"] = "fa fa-fw fa-microchip", ["displayName"] = "Rerun GPU validation",
                         ["disabled"] = suspended}
return actions
