"""The pipeline's exceptions."""

from __future__ import annotations

from typing import Any


class PipelineError(Exception):
    """Base of the pipeline's errors."""


class PipelineNotRunning(PipelineError):
    """``submit`` before ``start`` or after ``stop``."""


class UnknownOperation(PipelineError, KeyError):
    """No operation with this id in the journal."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown operation"


class JournalWriteError(PipelineError):
    """The journal could not be written: the transaction was not sent, its nonce is given back."""


class NodeUnavailable(PipelineError):
    """The node did not answer (connection refused, timeout, malformed response)."""


class RpcError(PipelineError):
    """The node answered a JSON-RPC request with an error."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        self.code = code
        self.message = message
        self.data = data
        super().__init__(f"JSON-RPC error {code}: {message}")
