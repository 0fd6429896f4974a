"""`python -m mkube.apiserver --data-dir ... --port ...`"""

from mkube.apiserver.server import apiserver_command

if __name__ == "__main__":
    apiserver_command(prog_name="python -m mkube.apiserver")
