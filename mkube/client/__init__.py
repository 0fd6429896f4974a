"""mkube.client: the library every component uses to talk to the API server.

    from mkube.client import Client, Informer, WorkQueue
    client = Client.from_kubeconfig()          # or Client("http://127.0.0.1:6443", token=...)
    pod = client.get(Pod, "web-1", "default")

`Client` (HTTP) and `FakeClient` (in memory, for unit tests) share one interface,
`BaseClient`. Import only mkube.api from here (enforced by import-linter).
"""

from mkube.client.controller import drain, process_next, run_workers
from mkube.client.errors import ConfigError, ConnectionFailed
from mkube.client.events import EventRecorder
from mkube.client.fake import Action, FakeClient
from mkube.client.informer import Informer, SharedInformerFactory
from mkube.client.interface import BaseClient
from mkube.client.objects import ObjectList, Watch, WatchEvent, key_of, split_key
from mkube.client.rest import Client
from mkube.client.retry import retry_on_conflict
from mkube.client.workqueue import WorkQueue

__all__ = [
    "Action", "BaseClient", "Client", "ConfigError", "ConnectionFailed", "EventRecorder", "FakeClient",
    "Informer", "ObjectList", "SharedInformerFactory", "Watch", "WatchEvent", "WorkQueue", "drain",
    "key_of", "process_next", "retry_on_conflict", "run_workers", "split_key",
]
