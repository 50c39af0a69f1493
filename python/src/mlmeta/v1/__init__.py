"""The raw protobuf messages and gRPC stub of mlmeta.v1 (generated; see scripts/gen_proto.py)."""
