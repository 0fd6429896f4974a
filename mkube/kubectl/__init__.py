"""mkubectl: kubectl's commands, flags and output for mkube (imports mkube.api and
mkube.client only).

Layout: `main` (entry point, global flags, the one place errors become messages),
`commands/` (one module per command), `printers` + `tabwriter` + `encoding` + `jsonpath`
(output exactly as kubectl prints it), `describe/` (describe text per kind),
`manifests` (-f input), `resources` (TYPE/NAME arguments), `fetch` (objects and Tables
from the API server), `deployments` / `polymorphic` (rollout and logs helpers).
"""
