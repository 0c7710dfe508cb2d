"""MessagePack-RPC transport for sidecar containers (server handler and client).

Protocol notes for sidecar authors are in ``docs/sidecar.md``.
"""

from microdcs.transports.msgpack_rpc.client import MessagePackRpcClient
from microdcs.transports.msgpack_rpc.errors import (
    RpcAuthenticationError,
    RpcConnectionError,
    RpcError,
    RpcTimeoutError,
)
from microdcs.transports.msgpack_rpc.server import MessagePackRpcHandler, RpcBinding

__all__ = [
    "MessagePackRpcClient",
    "MessagePackRpcHandler",
    "RpcAuthenticationError",
    "RpcBinding",
    "RpcConnectionError",
    "RpcError",
    "RpcTimeoutError",
]
