"""``python -m ocilearn.runtime COMMAND …``: runc's command line — the same parser, help and answers as ``ocilearn COMMAND`` (:mod:`.cli`)."""
from .launch import start

start()
from .cli import entry  # noqa: E402 - after start(): see .launch

entry()
