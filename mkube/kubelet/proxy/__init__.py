"""The per-node Service proxy (`mkube proxy`, and part of `mkube agent`).

On every node it listens on each Service's NodePort (all node addresses by default)
and on each ClusterIP (held on the `mkube0` interface when running as root), and
relays TCP connections / UDP sessions to the Service's ready endpoints — on this node
via the pod IP, on other nodes via the node IP and the pod's published host port —
round-robin, or sticky per client IP with `sessionAffinity: ClientIP`.

Modules: routing (pure: Services + Endpoints -> backends, Balancer), proxier (the
control loop: listeners and balancers), tcp / udp (data paths), netif (the ClusterIP
interface), main (`run`, `ProxyThread`, CLI). Imports mkube.api and mkube.client only.
"""
