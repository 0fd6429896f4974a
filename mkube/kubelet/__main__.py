"""`python -m mkube.kubelet --server URL --node-name N ...` (see mkube.kubelet.main)."""

from mkube.kubelet.main import main

if __name__ == "__main__":
    main()
