"""`python -m mkube.kubelet.proxy --server URL --node-name N --node-ip IP` (see main.py)."""

from mkube.kubelet.proxy.main import main

if __name__ == "__main__":
    main()
