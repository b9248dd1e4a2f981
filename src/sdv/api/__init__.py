"""The gRPC edge: KUKSA ``kuksa.val`` v1 and v2 servicers over the broker, and the server that hosts them.

Proto ↔ domain conversions live in :mod:`sdv.wire` only; the mapping from the project's exception tree
to gRPC status codes lives in :mod:`sdv.api.errors` only. The generated protobuf modules are in
:mod:`sdv._proto` (regenerate with ``scripts/gen_protos.py``; never edit them).
"""
