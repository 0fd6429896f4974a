"""The scheduler: assigns pending pods to nodes (kube-scheduler's design, in small pieces).

    framework.py   Status, plugin protocols, Profile, the pure schedule_one, FitError
    nodeinfo.py    PodInfo / NodeInfo (immutable, precomputed) and the per-cycle Snapshot
    plugins/       filters (NodeUnschedulable, NodeReady, NodeName, NodeAffinity,
                   TaintToleration, NodeResourcesFit, NodePorts) and scores
                   (LeastAllocated, NodeAffinity, TaintToleration, OwnerSpread)
    cache.py       nodes + pods as the scheduler sees them, with assume/forget/expiry
    queue.py       active / backoff / unschedulable queues
    binder.py      asynchronous bindings (409 = already bound)
    scheduler.py   informers, the scheduling loop, events and conditions
    main.py        `run(server_url, ...)`: the `mkube scheduler` command

Imports only mkube.api and mkube.client.
"""
