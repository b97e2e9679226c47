# Unary calls through Python's gRPC (C-core), a gRPC stack other than the server's: messages go
# as raw bytes (generic calls, no generated code). Usage: cgrpc-calls.py HOST:PORT CALLS_JSON,
# CALLS_JSON a list of {"path", "body" (hex), "metadata" ({name: value})}. Prints, as JSON, one
# {"code", "details", "bytes"} per call.
import json
import sys

import grpc

target, calls = sys.argv[1], json.loads(sys.argv[2])
results = []
with grpc.insecure_channel(target) as channel:
    for call in calls:
        method = channel.unary_unary(call["path"], request_serializer=None, response_deserializer=None)
        try:
            response = method(bytes.fromhex(call.get("body", "")), metadata=list(call.get("metadata", {}).items()), timeout=15)
            results.append({"code": "OK", "details": "", "bytes": len(response)})
        except grpc.RpcError as e:
            results.append({"code": e.code().name, "details": e.details()})
print(json.dumps(results))
