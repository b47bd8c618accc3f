"""The gRPC protocol: aggregator.proto and its generated stubs (regenerate with ``python -m
fedscale_halor.transport.proto.generate``). Only the transport package imports these modules."""
