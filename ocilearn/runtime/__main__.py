"""``python -m ocilearn.runtime COMMAND …``: runc's command line — the same parser, help and answers as ``ocilearn COMMAND`` (:mod:`.cli`)."""
from .launch import entry

entry()
